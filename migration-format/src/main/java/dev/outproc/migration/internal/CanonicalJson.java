package dev.outproc.migration.internal;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * RFC 8785 JSON Canonicalization Scheme (JCS) for the values a model entry's canonical form holds
 * (registry-format.md §4): objects ({@code Map<String, ?>}), arrays ({@code List<?>}), strings, booleans and
 * integers of magnitude at most 2^53 − 1. Members are sorted by their names' UTF-16 code units; strings escape only
 * {@code "}, {@code \} and the controls U+0000–U+001F ({@code \b \t \n \f \r}, others as {@code \}{@code u00xx}
 * with lower-case hex) and write every other character, astral ones included, as UTF-8; integers are plain decimal
 * (ECMAScript's Number-to-String for an integer); there is no whitespace. {@code null} is not a canonical value here.
 */
public final class CanonicalJson {
    /** Largest integer magnitude JCS writes exactly (2^53 − 1, ECMAScript's safe integer). */
    public static final long MAX_SAFE_INTEGER = (1L << 53) - 1;

    private CanonicalJson() {}

    /**
     * Serializes a value.
     *
     * @param value map, list, string, boolean or integer ({@link Integer} or {@link Long})
     * @return the canonical UTF-8 bytes
     * @throws IllegalArgumentException for a value outside the supported set
     */
    public static byte[] write(Object value) {
        StringBuilder b = new StringBuilder();
        append(b, value);
        return b.toString().getBytes(StandardCharsets.UTF_8);
    }

    private static void append(StringBuilder b, Object v) {
        switch (v) {
            case null -> throw new IllegalArgumentException("null has no canonical form here");
            case String s -> string(b, s);
            case Boolean x -> b.append(x ? "true" : "false");
            case Integer i -> integer(b, i);
            case Long l -> integer(b, l);
            case Map<?, ?> m -> {
                List<String> names = new ArrayList<>();
                for (Object k : m.keySet()) {
                    names.add((String) k);
                }
                // String.compareTo compares UTF-16 code units, which is the order RFC 8785 §3.2.3 prescribes.
                names.sort(String::compareTo);
                b.append('{');
                for (int i = 0; i < names.size(); i++) {
                    if (i > 0) {
                        b.append(',');
                    }
                    string(b, names.get(i));
                    b.append(':');
                    append(b, m.get(names.get(i)));
                }
                b.append('}');
            }
            case List<?> l -> {
                b.append('[');
                for (int i = 0; i < l.size(); i++) {
                    if (i > 0) {
                        b.append(',');
                    }
                    append(b, l.get(i));
                }
                b.append(']');
            }
            default -> throw new IllegalArgumentException("no canonical form for " + v.getClass().getName());
        }
    }

    private static void integer(StringBuilder b, long v) {
        if (v > MAX_SAFE_INTEGER || v < -MAX_SAFE_INTEGER) {
            throw new IllegalArgumentException("integer " + v + " is beyond 2^53-1 and has no exact JCS form; write it as a string");
        }
        b.append(v);
    }

    private static void string(StringBuilder b, String s) {
        b.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\b' -> b.append("\\b");
                case '\t' -> b.append("\\t");
                case '\n' -> b.append("\\n");
                case '\f' -> b.append("\\f");
                case '\r' -> b.append("\\r");
                default -> {
                    if (Character.isSurrogate(c) && !(Character.isHighSurrogate(c) && i + 1 < s.length()
                            && Character.isLowSurrogate(s.charAt(i + 1)))) {
                        if (!(Character.isLowSurrogate(c) && i > 0 && Character.isHighSurrogate(s.charAt(i - 1)))) {
                            throw new IllegalArgumentException("string with a lone surrogate U+" + Integer.toHexString(c) + " has no canonical form");
                        }
                    }
                    if (c < 0x20) {
                        b.append("\\u00").append(Character.forDigit(c >> 4, 16)).append(Character.forDigit(c & 0xf, 16));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        b.append('"');
    }
}
