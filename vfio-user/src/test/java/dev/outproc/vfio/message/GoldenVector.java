package dev.outproc.vfio.message;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * One golden vector from {@code src/test/resources/golden}: hex bytes, each line commented with the field
 * it holds ({@code # Struct[i].field = value}) or marked {@code # data}, and a {@code #!} line naming the
 * command, the message type and the fd count. The vectors were written from vfio-user.rst, linux/vfio.h and
 * the peers' sources, not by this library's encoders.
 */
record GoldenVector(String file, String command, boolean reply, int fds, byte[] bytes, List<Field> fields) {
    /** A commented field: the struct instance ("SparseMmapArea[1]"), the field, its value and where it starts. */
    record Field(String instance, String name, long value, int position) {
        String struct() {
            int bracket = instance.indexOf('[');
            return bracket < 0 ? instance : instance.substring(0, bracket);
        }
    }

    static List<String> index() {
        return List.of(read("index.txt").split("\n")).stream().filter(s -> !s.isBlank()).map(String::strip).toList();
    }

    private static String read(String name) {
        try (InputStream in = GoldenVector.class.getResourceAsStream("/golden/" + name)) {
            if (in == null) {
                throw new IllegalStateException("no golden file " + name);
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static GoldenVector load(String file) {
        String command = null;
        Boolean reply = null;
        int fds = -1;
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        List<Field> fields = new ArrayList<>();
        for (String raw : read(file).split("\n")) {
            String line = raw.strip();
            if (line.startsWith("#!")) {
                for (String kv : line.substring(2).strip().split("\\s+")) {
                    String[] p = kv.split("=", 2);
                    switch (p[0]) {
                        case "command" -> command = p[1];
                        case "type" -> reply = p[1].equals("reply");
                        case "fds" -> fds = Integer.parseInt(p[1]);
                        default -> throw new IllegalStateException(file + ": unknown key " + p[0]);
                    }
                }
                continue;
            }
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            int hash = line.indexOf('#');
            int position = bytes.size();
            for (String token : line.substring(0, hash < 0 ? line.length() : hash).strip().split("\\s+")) {
                bytes.write(HexFormat.fromHexDigits(token));
            }
            if (hash >= 0) {
                String comment = line.substring(hash + 1).strip();
                int eq = comment.indexOf(" = ");
                if (eq > 0) {
                    String qualified = comment.substring(0, eq).strip();
                    String value = comment.substring(eq + 3).strip().split("\\s+")[0];
                    int dot = qualified.lastIndexOf('.');
                    long v = value.startsWith("0x") ? Long.parseUnsignedLong(value.substring(2), 16) : Long.parseUnsignedLong(value);
                    fields.add(new Field(qualified.substring(0, dot), qualified.substring(dot + 1), v, position));
                }
            }
        }
        if (command == null || reply == null || fds < 0) {
            throw new IllegalStateException(file + ": #! line incomplete");
        }
        return new GoldenVector(file, command, reply, fds, bytes.toByteArray(), List.copyOf(fields));
    }
}
