package dev.outproc.examples.docs;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The Java in {@code docs/vhost-user-guide.md} is code that compiles: every {@code ```java} block follows a
 * {@code <!-- snippet: FILE#REGION -->} line and equals that region of FILE (between
 * {@code // @start region="REGION"} and {@code // @end}, common indentation removed).
 */
class GuideSnippetsTest {
    private static final Path ROOT = Path.of("..");
    private static final Pattern BLOCK = Pattern.compile("(?:<!-- snippet: ([^#\\s]+)#(\\S+) -->\\n)?```java\\n(.*?)```",
            Pattern.DOTALL);

    @Test
    void everyJavaBlockInTheGuideShouldBeARegionOfACompiledFile() throws IOException {
        String guide = Files.readString(ROOT.resolve("docs/vhost-user-guide.md"));
        Matcher m = BLOCK.matcher(guide);
        int blocks = 0;
        while (m.find()) {
            blocks++;
            if (m.group(1) == null) {
                fail("a ```java block without a snippet marker in the guide:\n" + m.group(3));
            }
            String expected = region(ROOT.resolve(m.group(1)), m.group(2));
            assertEquals(expected, m.group(3), "guide block for " + m.group(1) + "#" + m.group(2));
        }
        assertTrue(blocks >= 5, "the guide shows the device code, found " + blocks + " Java blocks");
    }

    /** The lines between the region's markers, with the indentation they share removed. */
    static String region(Path file, String name) throws IOException {
        List<String> lines = Files.readAllLines(file);
        String start = "// @start region=\"" + name + "\"";
        int from = -1;
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).strip().equals(start)) {
                from = i + 1;
                break;
            }
        }
        if (from < 0) {
            fail("no region " + name + " in " + file);
        }
        List<String> body = new ArrayList<>();
        for (int i = from; !lines.get(i).strip().equals("// @end"); i++) {
            body.add(lines.get(i));
        }
        int indent = body.stream().filter(l -> !l.isBlank()).mapToInt(l -> l.length() - l.stripLeading().length())
                .min().orElse(0);
        StringBuilder text = new StringBuilder();
        for (String l : body) {
            text.append(l.isBlank() ? "" : l.substring(indent)).append('\n');
        }
        return text.toString();
    }
}
