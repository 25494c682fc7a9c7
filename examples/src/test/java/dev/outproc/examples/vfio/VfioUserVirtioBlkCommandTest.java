package dev.outproc.examples.vfio;

import dev.outproc.examples.Main;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

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

    private final List<Process> servers = new ArrayList<>();

    @AfterEach
    void stopServers() throws InterruptedException {
        for (Process p : servers) {
            p.destroy();
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
        }
    }

    private Path image() throws IOException {
        Path image = dir.resolve("disk.img");
        try (FileChannel f = FileChannel.open(image, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            f.truncate(0).write(java.nio.ByteBuffer.allocate(1), (4L << 20) - 1);
        }
        return image;
    }

    private Process start(Path socket, Path log, String... extra) throws Exception {
        String java = ProcessHandle.current().info().command().orElseThrow();
        List<String> command = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), Main.class.getName(),
                "vfio-user-virtio-blk", "--socket-path", socket.toString()));
        command.addAll(List.of(extra));
        Process process = new ProcessBuilder(command).redirectError(log.toFile()).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        servers.add(process);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!Files.exists(socket) && process.isAlive() && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        return process;
    }

    /** Runs the examples' command line in this JVM; returns exit status, standard output, standard error. */
    private static String[] run(String... args) {
        PrintStream savedOut = System.out;
        PrintStream savedErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        int status;
        try {
            status = Main.commandLine().execute(args);
        } finally {
            System.setOut(savedOut);
            System.setErr(savedErr);
        }
        return new String[] {Integer.toString(status), out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8)};
    }

    @Test
    void shouldBeEnumeratedAsAVirtioBlkPciFunctionClientAfterClientAndStopOnSigterm() throws Exception {
        Path socket = dir.resolve("blk.sock");
        Path log = dir.resolve("blk.log");
        Process p = start(socket, log, "--image", image().toString());
        assertTrue(Files.exists(socket), () -> "the server listens; stderr: " + read(log));
        for (int client = 1; client <= 2; client++) {
            String[] r = run("vfio-user-client", "--socket-path", socket.toString(), "info");
            assertEquals("0", r[0], r[2]);
            String report = r[1];
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
    void aMissingImageShouldBeOneLineAndExitStatusOne() {
        String[] r = run("vfio-user-virtio-blk", "--socket-path", dir.resolve("x.sock").toString(), "--image",
                dir.resolve("absent.img").toString());
        assertEquals("1", r[0]);
        assertTrue(r[2].startsWith("vfio-user-virtio-blk: "), r[2]);
        assertEquals(1, r[2].strip().lines().count(), r[2]);
        assertFalse(Files.exists(dir.resolve("x.sock")), "nothing listens");
    }

    private static String read(Path log) {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "(" + e.getMessage() + ")";
        }
    }
}
