package dev.outproc.migration.stream;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Extracts the worked example from the normative spec, so the document is checked by the build. */
final class SpecDocument {
    static final Path SPEC = Path.of("docs/stream-format.md");
    private static final Pattern DUMP_LINE = Pattern.compile("^([0-9a-f]{4})  ((?:[0-9a-f]{2} ?)+)\\s*(?:\\|.*)?$");

    private SpecDocument() {}

    static List<String> lines() throws IOException {
        Path p = Files.exists(SPEC) ? SPEC : Path.of("migration-format").resolve(SPEC);
        return Files.readAllLines(p);
    }

    /** Bytes of the fenced {@code hexdump} block: each line "OFFS  hex bytes  | comment". */
    static byte[] workedExampleBytes() throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        boolean in = false;
        for (String line : lines()) {
            if (line.startsWith("```hexdump")) {
                in = true;
                continue;
            }
            if (in && line.startsWith("```")) {
                break;
            }
            if (!in) {
                continue;
            }
            Matcher m = DUMP_LINE.matcher(line);
            if (!m.matches()) {
                throw new IllegalStateException("malformed hex dump line in the spec: '" + line + "'");
            }
            int offset = Integer.parseInt(m.group(1), 16);
            if (offset != out.size()) {
                throw new IllegalStateException("hex dump line at offset " + m.group(1) + " but " + out.size() + " bytes precede it");
            }
            out.writeBytes(HexFormat.of().parseHex(m.group(2).replace(" ", "")));
        }
        return out.toByteArray();
    }

    /** The transcript value the spec states for the worked example. */
    static String documentedTranscript() throws IOException {
        for (String line : lines()) {
            if (line.startsWith("Transcript of the worked example: `")) {
                return line.substring(line.indexOf('`') + 1, line.lastIndexOf('`'));
            }
        }
        throw new IllegalStateException("the spec does not state the worked example's transcript");
    }
}
