package dev.outproc.vhost.backend;

import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.vhost.message.ProtocolFeature;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * kill -9 of the front-end process in the middle of I/O: a child JVM connects, maps its memory, starts a
 * ring, completes writes and then has a full ring of writes in flight (the device holds them) when it is
 * killed. The back-end must see the hang-up, stop the ring, unmap the dead process's memory and close
 * every fd it received, then serve the next front-end; afterwards this process holds what it held before
 * the child connected. Three rounds, so that a leak per kill shows.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class FrontendKilledFaultTest {
    @TempDir
    Path dir;

    @Test
    void theBackEndShouldCleanUpAfterAKilledFrontEndAndServeTheNext() throws Exception {
        Path socket = dir.resolve("kill.sock");
        RamBlkDevice device = RamBlkDevice.ram(1 << 20, 1);
        try (Rig.Served served = Rig.serve(socket, device)) {
            // One connection first, so that lazily created resources (worker state, JIT) are in the baseline.
            useOnce(socket, device);
            ProcessResources before = ProcessResources.settle(ProcessResources.now());
            for (int round = 0; round < 3; round++) {
                device.holdAfter = device.served + 5;
                Process child = start(socket, 5);
                try {
                    awaitLine(child, "IO");
                    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
                    while (heldCount(device) == 0 && System.nanoTime() < deadline) {
                        Thread.sleep(10);
                    }
                    assertTrue(heldCount(device) > 0, "requests in flight at the kill");
                } finally {
                    child.destroyForcibly(); // SIGKILL
                    assertTrue(child.waitFor(30, TimeUnit.SECONDS), "the front-end process died");
                }
                assertEquals(137, child.exitValue(), "killed by SIGKILL");
                synchronized (device.held) {
                    device.held.clear();
                }
                device.holdAfter = Long.MAX_VALUE;
                useOnce(socket, device);
            }
            ProcessResources after = ProcessResources.settle(before);
            System.out.println("FrontendKilledFaultTest before: " + before + "; after 3 kills: " + after);
            assertTrue(after.fds() <= before.fds(), "open fds " + before.fds() + " -> " + after.fds() + " (an fd open before may close meanwhile; more is a leak): " + TestFds.snapshot());
            assertTrue(after.threads() <= before.threads(), "threads " + before.threads() + " -> " + after.threads());
            assertTrue(after.memfdMappings() <= before.memfdMappings(), "memfd mappings of dead front-ends " + before.memfdMappings() + " -> " + after.memfdMappings());
        }
    }

    private static int heldCount(RamBlkDevice device) {
        synchronized (device.held) {
            return device.held.size();
        }
    }

    /** A front-end in this process that does one write and read; proves the back-end serves. */
    private static void useOnce(Path socket, RamBlkDevice device) throws Exception {
        try (Rig rig = Rig.connect(socket, 1L << 20)) {
            long acked = rig.negotiate(VirtioFeature.VERSION_1.mask(), true, ProtocolFeature.REPLY_ACK.mask());
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, acked, 2, 4096);
            rig.program(ring, Rig.Setup.standard());
            byte[] block = new byte[4096];
            block[7] = 42;
            assertEquals(RamBlkDevice.S_OK, ring.write(0, 8, block));
            byte[] back = new byte[4096];
            assertEquals(RamBlkDevice.S_OK, ring.read(1, 8, back));
            assertEquals(42, back[7]);
        }
    }

    private Process start(Path socket, int writes) throws Exception {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        String classPath = System.getProperty("java.class.path");
        String modulePath = System.getProperty("jdk.module.path");
        if (modulePath != null && !modulePath.isEmpty()) {
            classPath = modulePath + File.pathSeparator + classPath;
        }
        ProcessBuilder pb = new ProcessBuilder(java.toString(), "--enable-native-access=ALL-UNNAMED", "-cp", classPath,
                KillableFrontendMain.class.getName(), socket.toString(), Integer.toString(writes));
        pb.redirectError(dir.resolve("frontend-stderr.log").toFile());
        return pb.start();
    }

    private void awaitLine(Process p, String expected) throws Exception {
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        CompletableFuture<String> line = CompletableFuture.supplyAsync(() -> {
            try {
                return out.readLine();
            } catch (java.io.IOException e) {
                return "read failed: " + e.getMessage();
            }
        });
        String got;
        try {
            got = line.get(60, TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            got = "nothing within 60 s";
        }
        if (!expected.equals(got)) {
            fail("front-end said " + got + "; stderr: " + Files.readString(dir.resolve("frontend-stderr.log")));
        }
    }
}
