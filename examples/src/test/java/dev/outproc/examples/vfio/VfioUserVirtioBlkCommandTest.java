package dev.outproc.examples.vfio;

import dev.outproc.examples.testing.CommandRun;
import dev.outproc.examples.testing.SubcommandProcesses;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.TimeUnit;

import static dev.outproc.examples.testing.SubcommandProcesses.read;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code vfio-user-virtio-blk} as a program: enumerated by {@code vfio-user-client info} as a virtio-blk
 * PCI function, client after client, stopped cleanly by SIGTERM; a missing image is one line and exit 1.
 */
class VfioUserVirtioBlkCommandTest {
    @TempDir
    Path dir;

    private final SubcommandProcesses servers = new SubcommandProcesses();

    @AfterEach
    void stopServers() throws InterruptedException {
        servers.close();
    }

    private Path image() throws IOException {
        Path image = dir.resolve("disk.img");
        try (FileChannel f = FileChannel.open(image, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            f.truncate(0).write(java.nio.ByteBuffer.allocate(1), (4L << 20) - 1);
        }
        return image;
    }

    @Test
    void shouldBeEnumeratedAsAVirtioBlkPciFunctionClientAfterClientAndStopOnSigterm() throws Exception {
        Path socket = dir.resolve("blk.sock");
        Path log = dir.resolve("blk.log");
        Process p = servers.start(socket, log, "vfio-user-virtio-blk", "--socket-path", socket.toString(), "--image",
                image().toString());
        assertTrue(Files.exists(socket), () -> "the server listens; stderr: " + read(log));
        for (int client = 1; client <= 2; client++) {
            CommandRun r = CommandRun.of("vfio-user-client", "--socket-path", socket.toString(), "info");
            assertEquals(0, r.status(), r.err());
            String report = r.out();
            assertTrue(report.contains("[1af4:1042] class 010000 rev 01 subsystem [1af4:1042]"), report);
            assertTrue(report.contains("region 4 (BAR4): size=0x4000"), report);
            assertTrue(report.contains("MSI-X: Enable- Count=2"), report);
            assertTrue(report.contains("Vendor Specific"), report);
        }
        p.destroy(); // SIGTERM
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "the server stops on SIGTERM");
        assertFalse(Files.exists(socket), "the socket file is removed");
        assertTrue(read(log).contains("vfio-user-virtio-blk: serving file"), read(log));
    }

    @Test
    void sigtermShouldRemoveTheMigrationSocketToo() throws Exception {
        Path socket = dir.resolve("blk.sock");
        Path handshake = dir.resolve("blk.mig");
        Path log = dir.resolve("blk.log");
        Process p = servers.start(socket, log, "vfio-user-virtio-blk", "--socket-path", socket.toString(), "--image",
                image().toString(), "--migration-socket", handshake.toString());
        assertTrue(Files.exists(socket) && Files.exists(handshake), () -> "the server listens; stderr: " + read(log));
        p.destroy(); // SIGTERM
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "the server stops on SIGTERM");
        assertFalse(Files.exists(socket), "the socket file is removed");
        assertFalse(Files.exists(handshake), "the migration socket file is removed");
    }

    @Test
    void aMissingImageShouldBeOneLineAndExitStatusOne() {
        CommandRun r = CommandRun.of("vfio-user-virtio-blk", "--socket-path", dir.resolve("x.sock").toString(), "--image",
                dir.resolve("absent.img").toString());
        assertEquals(1, r.status());
        assertTrue(r.err().startsWith("vfio-user-virtio-blk: "), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertFalse(Files.exists(dir.resolve("x.sock")), "nothing listens");
    }

}
