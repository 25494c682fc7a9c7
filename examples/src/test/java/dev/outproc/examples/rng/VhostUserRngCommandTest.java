package dev.outproc.examples.rng;

import dev.outproc.examples.Main;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code vhost-user-rng} as a program: the back-end program conventions the library provides. */
class VhostUserRngCommandTest {
    @Test
    void shouldStopCleanlyOnSigtermAndRemoveItsSocket(@TempDir Path dir) throws Exception {
        Path socket = dir.resolve("rng.sock");
        Path log = dir.resolve("stderr.txt");
        String java = ProcessHandle.current().info().command().orElseThrow();
        Process process = new ProcessBuilder(List.of(java, "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), Main.class.getName(),
                "vhost-user-rng", "--socket-path", socket.toString()))
                .redirectError(log.toFile()).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!Files.exists(socket) && process.isAlive() && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            assertTrue(Files.exists(socket), () -> "the back-end listens; stderr: " + read(log));
            process.destroy(); // SIGTERM
            assertTrue(process.waitFor(30, TimeUnit.SECONDS), "the back-end stops on SIGTERM");
            assertFalse(Files.exists(socket), "the socket is removed on SIGTERM");
            assertTrue(read(log).contains("vhost-user-rng: serving on " + socket), () -> read(log));
        } finally {
            process.destroyForcibly();
        }
    }

    @Test
    void shouldPrintItsCapabilities() {
        java.io.PrintStream saved = System.out;
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        System.setOut(new java.io.PrintStream(bytes, true, StandardCharsets.UTF_8));
        try {
            assertEquals(0, Main.commandLine().execute("vhost-user-rng", "--print-capabilities"));
        } finally {
            System.setOut(saved);
        }
        assertEquals("{\n  \"type\" : \"rng\"\n}\n", bytes.toString(StandardCharsets.UTF_8));
    }

    private static String read(Path file) {
        try {
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (java.io.IOException e) {
            return "(unreadable: " + e.getMessage() + ")";
        }
    }
}
