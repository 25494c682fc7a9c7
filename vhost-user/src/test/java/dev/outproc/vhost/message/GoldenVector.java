package dev.outproc.vhost.message;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One golden vector file from {@code src/test/resources/golden}: hex bytes, each line commented with the
 * field it holds ({@code # name = value}), and a {@code #!} line naming the stream, the fd count and the
 * request. {@code 00*N} stands for N zero bytes.
 */
record GoldenVector(String file, MessageStream stream, int fds, String requestName, byte[] bytes,
                    Map<String, Object> fields) {
    private static final Set<String> BYTE_FIELDS = Set.of("config", "bytes", "uuid");

    static List<String> index() {
        try (InputStream in = GoldenVector.class.getResourceAsStream("/golden/index.txt")) {
            if (in == null) {
                throw new IllegalStateException("golden/index.txt missing");
            }
            List<String> names = new ArrayList<>();
            for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
                if (!line.isBlank()) {
                    names.add(line.strip());
                }
            }
            return names;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static GoldenVector load(String file) {
        String text;
        try (InputStream in = GoldenVector.class.getResourceAsStream("/golden/" + file)) {
            if (in == null) {
                throw new IllegalStateException("no golden vector " + file);
            }
            text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        MessageStream stream = null;
        int fds = -1;
        String request = null;
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        Map<String, Object> fields = new LinkedHashMap<>();
        for (String raw : text.split("\n")) {
            String line = raw.strip();
            if (line.isEmpty()) {
                continue;
            }
            if (line.startsWith("#!")) {
                for (String kv : line.substring(2).strip().split("\\s+")) {
                    String[] p = kv.split("=", 2);
                    switch (p[0]) {
                        case "stream" -> stream = MessageStream.valueOf(p[1]);
                        case "fds" -> fds = Integer.parseInt(p[1]);
                        case "request" -> request = p[1];
                        default -> throw new IllegalStateException(file + ": unknown key " + p[0]);
                    }
                }
                continue;
            }
            if (line.startsWith("#")) {
                continue;
            }
            int hash = line.indexOf('#');
            String hex = hash < 0 ? line : line.substring(0, hash);
            for (String token : hex.strip().split("\\s+")) {
                if (token.startsWith("00*")) {
                    bytes.writeBytes(new byte[Integer.parseInt(token.substring(3))]);
                } else {
                    bytes.write(HexFormat.fromHexDigits(token));
                }
            }
            if (hash >= 0) {
                String comment = line.substring(hash + 1).strip();
                int eq = comment.indexOf(" = ");
                if (eq > 0 && !comment.startsWith("(")) {
                    String name = comment.substring(0, eq).strip();
                    String value = comment.substring(eq + 3).strip().split("\\s+")[0];
                    fields.put(name, parseValue(name, value));
                }
            }
        }
        if (stream == null || fds < 0 || request == null) {
            throw new IllegalStateException(file + ": #! line incomplete");
        }
        return new GoldenVector(file, stream, fds, request, bytes.toByteArray(), fields);
    }

    private static Object parseValue(String name, String value) {
        if (BYTE_FIELDS.contains(name)) {
            return value.equals("-") ? new byte[0] : HexFormat.of().parseHex(value);
        }
        if (value.startsWith("0x")) {
            return Long.parseUnsignedLong(value.substring(2), 16);
        }
        return Long.parseUnsignedLong(value);
    }

    /** {@return the request the {@code #!} line names} */
    VhostUserRequest request() {
        return stream.backendChannel() ? BackendRequest.valueOf(requestName) : FrontendRequest.valueOf(requestName);
    }
}
