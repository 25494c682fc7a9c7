package dev.outproc.vfio.program;

import dev.outproc.vfio.client.VfioUserClient;
import dev.outproc.vfio.message.Capabilities;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link ServerProgram}: its command line (one line per error, exit status 2 for usage, 1 for failure) and, as a
 * process of its own, a clean stop on SIGTERM with a client connected, and at seeded random moments from the JVM's
 * start on (the seed is printed; {@code -Dsigterm.seed=N} repeats a run): no socket file is left behind.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ServerProgramTest {
    private static final long SEED = Long.getLong("sigterm.seed", System.nanoTime());

    @TempDir
    Path dir;

    private final List<Process> processes = new ArrayList<>();

    @AfterEach
    void stopProcesses() throws InterruptedException {
        for (Process p : processes) {
            p.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
        }
    }

    private record Run(int status, String out, String err) {
    }

    private static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = ServerProgram.run(args, "tiny-card", TinyCardProgram::card, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void wrongCommandLinesShouldBeOneLineWithTheUsageAndStatusTwo() {
        String[][] wrong = {
            {},
            {"--socket-path"},
            {"--socket-path="},
            {"--socket-path", "/tmp/a", "--fd", "3"},
            {"--fd", "three"},
            {"--fd=-1"},
            {"--queues", "2"},
        };
        for (String[] args : wrong) {
            Run r = run(args);
            assertEquals(ServerProgram.EXIT_USAGE, r.status(), String.join(" ", args));
            List<String> lines = r.err().lines().toList();
            assertEquals(2, lines.size(), r.err());
            assertTrue(lines.get(0).startsWith("tiny-card: "), r.err());
            assertEquals("usage: tiny-card (--socket-path PATH | --fd FDNUM)", lines.get(1));
        }
    }

    @Test
    void helpShouldPrintTheUsageAndSucceed() {
        Run r = run("--help");
        assertEquals(0, r.status());
        assertTrue(r.out().startsWith("usage: tiny-card (--socket-path PATH | --fd FDNUM)"), r.out());
        assertEquals("", r.err());
    }

    @Test
    void aSocketThatCannotBeUsedShouldBeOneLineAndStatusOne() {
        Run notOpen = run("--fd", "987654");
        assertEquals(ServerProgram.EXIT_FAILURE, notOpen.status());
        assertTrue(notOpen.err().strip().endsWith("tiny-card: fd 987654 is not open"), notOpen.err());
        Run noDirectory = run("--socket-path", dir.resolve("missing/dev.sock").toString());
        assertEquals(ServerProgram.EXIT_FAILURE, noDirectory.status());
        assertTrue(noDirectory.err().lines().reduce((a, b) -> b).orElseThrow().startsWith("tiny-card: "), noDirectory.err());
        assertFalse(noDirectory.err().contains("\tat "), "no stack trace: " + noDirectory.err());
    }

    private Process launch(Path socket, Path log) throws IOException {
        String java = ProcessHandle.current().info().command().orElseThrow();
        Process p = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                TinyCardProgram.class.getName(), "--socket-path", socket.toString())
                .redirectError(log.toFile()).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        processes.add(p);
        return p;
    }

    private static String read(Path log) {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "(" + e + ")";
        }
    }

    @Test
    void sigtermWithAClientConnectedShouldStopTheProgramAndRemoveItsSocket() throws Exception {
        Path socket = dir.resolve("card.sock");
        Path log = dir.resolve("card.log");
        Process p = launch(socket, log);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!Files.exists(socket) && p.isAlive() && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertTrue(Files.exists(socket), () -> "the program listens; stderr: " + read(log));
        try (VfioUserClient client = VfioUserClient.connect(socket)) {
            client.negotiate(Capabilities.builder().build());
            assertTrue(client.deviceInfo().numRegions() > 0);
            p.destroy(); // SIGTERM
            assertTrue(p.waitFor(30, TimeUnit.SECONDS), () -> "the program stops on SIGTERM; stderr: " + read(log));
        }
        assertFalse(Files.exists(socket), () -> "the socket file is removed; stderr: " + read(log));
        assertTrue(read(log).contains("tiny-card: serving on " + socket), read(log));
    }

    static IntStream moments() {
        System.out.println("ServerProgramTest seed " + SEED + " (-Dsigterm.seed=" + SEED + " repeats it)");
        Random random = new Random(SEED);
        return IntStream.generate(() -> random.nextInt(1201)).limit(4);
    }

    @ParameterizedTest(name = "SIGTERM after {0} ms")
    @MethodSource("moments")
    void sigtermAtAnyMomentShouldLeaveNoSocketBehind(int delayMillis) throws Exception {
        Path socket = dir.resolve("card.sock");
        Path log = dir.resolve("card.log");
        Process p = launch(socket, log);
        Thread.sleep(delayMillis);
        p.destroy();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), () -> "the program stops on SIGTERM; stderr: " + read(log));
        assertFalse(Files.exists(socket), () -> "the socket file is removed; stderr: " + read(log));
    }
}
