package dev.outproc.migration.internal;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.exc.StreamConstraintsException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Strict JSON to a small tree (maps, lists, strings, booleans, {@link Num}) through Jackson's streaming parser:
 * duplicate keys, trailing content, NaN, comments and oversize input are rejected, and depth and sizes are capped.
 */
public final class JsonTree {
    /** Largest accepted document. */
    public static final int MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;
    /** Deepest nesting. */
    public static final int MAX_DEPTH = 24;
    /** Most values in a document. */
    public static final int MAX_VALUES = 200_000;

    private static final JsonFactory FACTORY = JsonFactory.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .streamReadConstraints(StreamReadConstraints.builder()
                    .maxNestingDepth(MAX_DEPTH)
                    .maxStringLength(256 * 1024)
                    .maxNumberLength(40)
                    .maxNameLength(256)
                    .maxDocumentLength(MAX_DOCUMENT_BYTES)
                    .build())
            .build();

    /**
     * A JSON number kept as its text.
     *
     * @param text the literal
     * @param integral whether it is an integer literal
     */
    public record Num(String text, boolean integral) {}

    /** Malformed or over-limit JSON, with the location. */
    public static final class JsonException extends IOException {
        private static final long serialVersionUID = 1L;

        /** @param message what is wrong */
        public JsonException(String message) {
            super(message);
        }
    }

    private JsonTree() {}

    /**
     * Parses a document.
     *
     * @param json UTF-8 bytes
     * @return the tree
     * @throws JsonException if the document is malformed or over a limit
     */
    public static Object parse(byte[] json) throws JsonException {
        if (json.length > MAX_DOCUMENT_BYTES) {
            throw new JsonException("JSON document of " + json.length + " bytes exceeds " + MAX_DOCUMENT_BYTES);
        }
        try (JsonParser p = FACTORY.createParser(json)) {
            int[] count = {0};
            JsonToken t = p.nextToken();
            if (t == null) {
                throw new JsonException("empty JSON document");
            }
            Object v = value(p, t, count);
            if (p.nextToken() != null) {
                throw new JsonException("content after the JSON value at " + p.currentLocation().offsetDescription());
            }
            return v;
        } catch (JsonException e) {
            throw e;
        } catch (StreamConstraintsException e) {
            throw new JsonException("JSON over a limit: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new JsonException("malformed JSON: " + e.getMessage().lines().findFirst().orElse(""));
        }
    }

    private static Object value(JsonParser p, JsonToken t, int[] count) throws IOException {
        if (++count[0] > MAX_VALUES) {
            throw new JsonException("JSON document has more than " + MAX_VALUES + " values");
        }
        switch (t) {
            case START_OBJECT -> {
                Map<String, Object> m = new LinkedHashMap<>();
                for (JsonToken k = p.nextToken(); k != JsonToken.END_OBJECT; k = p.nextToken()) {
                    String name = wellFormed(p.currentName(), p);
                    m.put(name, value(p, p.nextToken(), count));
                }
                return m;
            }
            case START_ARRAY -> {
                List<Object> l = new ArrayList<>();
                for (JsonToken e = p.nextToken(); e != JsonToken.END_ARRAY; e = p.nextToken()) {
                    l.add(value(p, e, count));
                }
                return l;
            }
            case VALUE_STRING -> {
                return wellFormed(p.getText(), p);
            }
            case VALUE_NUMBER_INT -> {
                return new Num(p.getText(), true);
            }
            case VALUE_NUMBER_FLOAT -> {
                return new Num(p.getText(), false);
            }
            case VALUE_TRUE -> {
                return Boolean.TRUE;
            }
            case VALUE_FALSE -> {
                return Boolean.FALSE;
            }
            case VALUE_NULL -> throw new JsonException("JSON null at " + p.currentLocation().offsetDescription()
                    + ": null is not a value in these documents; leave the key out instead");
            default -> throw new JsonException("unexpected JSON token " + t + " at " + p.currentLocation().offsetDescription());
        }
    }

    /** Refuses a string with a lone surrogate (a {@code \}{@code ud800} escape without its pair): it is not Unicode text. */
    private static String wellFormed(String s, JsonParser p) throws JsonException {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                throw new JsonException("string with a lone surrogate U+" + Integer.toHexString(c).toUpperCase(java.util.Locale.ROOT)
                        + " at " + p.currentLocation().offsetDescription());
            }
        }
        return s;
    }
}
