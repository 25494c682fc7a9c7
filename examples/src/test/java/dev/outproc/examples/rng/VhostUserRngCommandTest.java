package dev.outproc.examples.rng;

import dev.outproc.examples.testing.CommandRun;
import dev.outproc.examples.testing.SubcommandProcesses;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static dev.outproc.examples.testing.SubcommandProcesses.read;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code vhost-user-rng} as a program: the back-end program conventions the library provides. */
class VhostUserRngCommandTest {
    @Test
    void shouldStopCleanlyOnSigtermAndRemoveItsSocket(@TempDir Path dir) throws Exception {
        Path socket = dir.resolve("rng.sock");
        Path log = dir.resolve("stderr.txt");
        try (SubcommandProcesses processes = new SubcommandProcesses()) {
            Process process = processes.start(socket, log, "vhost-user-rng", "--socket-path", socket.toString());
            assertTrue(Files.exists(socket), () -> "the back-end listens; stderr: " + read(log));
            process.destroy(); // SIGTERM
            assertTrue(process.waitFor(30, TimeUnit.SECONDS), "the back-end stops on SIGTERM");
            assertFalse(Files.exists(socket), "the socket is removed on SIGTERM");
            assertTrue(read(log).contains("vhost-user-rng: serving on " + socket), () -> read(log));
        }
    }

    @Test
    void shouldPrintItsCapabilities() {
        CommandRun r = CommandRun.of("vhost-user-rng", "--print-capabilities");
        assertEquals(0, r.status(), r.err());
        assertEquals("{\n  \"type\" : \"rng\"\n}\n", r.out());
    }
}
