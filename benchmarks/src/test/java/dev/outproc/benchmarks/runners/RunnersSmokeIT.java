package dev.outproc.benchmarks.runners;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Runs each side-by-side runner under {@code benchmarks/runners} once with tiny durations and checks that
 * it prints, for every row, the peer's figure, ours and their ratio. For function only: the figures are
 * never compared with anything. A runner that finds its peer missing exits 77: the test is then skipped,
 * or fails with {@code -Dinterop.required=true}.
 */
@Timeout(value = 600, unit = TimeUnit.SECONDS)
class RunnersSmokeIT {
    /** A positive decimal (a figure or a ratio). */
    private static final String NUMBER = "\\s*\\d+(\\.\\d+)?\\s*";
    private static final int SKIPPED = 77;

    private static Path runners() {
        Path here = Path.of("").toAbsolutePath();
        Path dir = here.resolve("runners");
        return Files.isDirectory(dir) ? dir : here.resolve("benchmarks").resolve("runners");
    }

    /** Runs a runner; {@return its standard output} Skips (or fails when peers are required) on exit 77. */
    private static String run(String script, String... args) throws IOException, InterruptedException {
        String python = findPython();
        List<String> cmd = new ArrayList<>(List.of(python, runners().resolve(script).toString()));
        cmd.addAll(List.of(args));
        Path work = Files.createTempDirectory("outproc-runner-smoke");
        cmd.addAll(List.of("--work-dir", work.toString()));
        Path out = work.resolve("stdout.txt");
        Path err = work.resolve("stderr.txt");
        Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        if (!p.waitFor(540, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail(script + " did not finish within 540 s; " + tail(out) + tail(err));
        }
        String stdout = Files.readString(out, StandardCharsets.UTF_8);
        String stderr = Files.readString(err, StandardCharsets.UTF_8);
        if (p.exitValue() == SKIPPED) {
            skipOrFail(script + ": " + stderr.strip());
        }
        assertEquals(0, p.exitValue(), script + " failed:\n" + stdout + "\n" + stderr);
        // Logs stay for a failed run only.
        try (var files = Files.walk(work)) {
            for (Path f : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(f);
            }
        }
        return stdout;
    }

    private static String tail(Path file) throws IOException {
        if (!Files.exists(file)) {
            return "";
        }
        String s = Files.readString(file, StandardCharsets.UTF_8);
        return s.substring(Math.max(0, s.length() - 3000));
    }

    private static void skipOrFail(String message) {
        if (Boolean.getBoolean("interop.required")) {
            fail(message + " [interop.required=true]");
        }
        Assumptions.abort(message);
    }

    private static String findPython() {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
            Path p = Path.of(dir, "python3");
            if (Files.isExecutable(p)) {
                return p.toString();
            }
        }
        skipOrFail("python3 is not installed");
        return null;
    }

    /** {@return the rows of the Markdown table the runner printed last (header and ruler dropped)} */
    private static List<String[]> table(String stdout) {
        List<String[]> rows = new ArrayList<>();
        List<String> lines = stdout.lines().filter(l -> l.startsWith("|")).toList();
        assertTrue(lines.size() >= 3, "no table with a row in:\n" + stdout);
        for (String line : lines.subList(2, lines.size())) {
            String[] cells = line.substring(1, line.length() - 1).split("\\|", -1);
            rows.add(cells);
        }
        return rows;
    }

    private static void assertNumbers(String[] row, int[] columns, String stdout) {
        for (int c : columns) {
            assertTrue(Pattern.matches(NUMBER, row[c]), "column " + c + " of row " + String.join("|", row)
                    + " is not a figure:\n" + stdout);
        }
    }

    @Test
    void netRunnerShouldPrintTestpmdsFigureOursAndTheRatioForEveryShape() throws Exception {
        String out = run("net.py", "--shapes", "sink,source,loopback", "--sizes", "64", "--samples", "1",
                "--warmup", "0");
        List<String[]> rows = table(out);
        assertEquals(3, rows.size(), out);
        for (String[] r : rows) {
            assertEquals(5, r.length, out);
            assertNumbers(r, new int[] {2, 3, 4}, out);
        }
    }

    @Test
    void blkRunnerShouldPrintQemuStorageDaemonsFigureOursAndTheRatio() throws Exception {
        String out = run("blk.py", "--ops", "read,write", "--depths", "1", "--queues", "1", "--seconds", "0.5",
                "--warmup", "0.2", "--image-mib", "16");
        List<String[]> rows = table(out);
        assertEquals(2, rows.size(), out);
        for (String[] r : rows) {
            assertEquals(8, r.length, out);
            assertNumbers(r, new int[] {3, 4, 5}, out);
            assertTrue(Pattern.matches(NUMBER + "/" + NUMBER, r[6]) && Pattern.matches(NUMBER + "/" + NUMBER, r[7]),
                    "p50/p99 of both: " + String.join("|", r));
        }
    }

    @Test
    void virtqueueRunnerShouldPrintTheCFigureJavasAndTheRatio() throws Exception {
        String out = run("virtqueue.py", "--quiet", "--c-seconds", "0.02", "--c-runs", "1", "--warmup-iterations", "0",
                "--iterations", "1", "--iteration-time", "100ms", "--param", "ring=split", "--param", "descriptors=1",
                "--param", "indirect=false");
        List<String[]> rows = table(out);
        assertEquals(2, rows.size(), "batch 1 and batch 32:\n" + out);
        for (String[] r : rows) {
            assertEquals(8, r.length, out);
            assertNumbers(r, new int[] {4, 5, 6, 7}, out);
        }
    }
}
