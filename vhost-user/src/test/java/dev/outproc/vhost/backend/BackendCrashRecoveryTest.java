package dev.outproc.vhost.backend;

import dev.outproc.vhost.frontend.VhostUserFrontend;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.core.virtio.VirtioFeature;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static dev.outproc.core.memory.Layouts.LE_U16;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The crash test of the vhost-user issue: the back-end runs in a separate JVM serving a file-backed
 * block device; our front-end streams writes with INFLIGHT_SHMFD negotiated and keeps the log from
 * GET_INFLIGHT_FD; the back-end is killed with {@code kill -9} while writes are in flight, restarted,
 * and the front-end reconnects (SET_INFLIGHT_FD with the kept log, then the rings again). Every write
 * acknowledged before the crash must be in the image, and every write in flight at the crash must be
 * resubmitted by the new back-end and completed: nothing is lost.
 *
 * <p>Two variants: the back-end hangs (stops completing) after a random number of writes, so that a full
 * queue of requests is popped, logged and in flight when it dies (only resubmission from the inflight log
 * can complete them); or it dies at a random point of the running stream. About five seconds: two JVM
 * starts per variant, so it runs with the unit tests.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class BackendCrashRecoveryTest {
    private static final long IMAGE_BYTES = 16L << 20;
    private static final int BLOCK = 4096;
    private static final int DEPTH = 16;
    private static final int RING = 64;
    private static final int TOTAL_WRITES = 1500;

    @TempDir
    Path dir;

    private Process startBackend(Path socket, Path image, long holdAfter) throws Exception {
        Files.deleteIfExists(socket);
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        // Surefire may put the project's modules on the module path: the child takes both, on its class path.
        String classPath = System.getProperty("java.class.path");
        String modulePath = System.getProperty("jdk.module.path");
        if (modulePath != null && !modulePath.isEmpty()) {
            classPath = modulePath + File.pathSeparator + classPath;
        }
        ProcessBuilder pb = new ProcessBuilder(java.toString(), "--enable-native-access=ALL-UNNAMED",
                "-cp", classPath, CrashBackendMain.class.getName(),
                socket.toString(), image.toString(), Long.toString(holdAfter));
        pb.redirectError(dir.resolve("backend-stderr.log").toFile());
        Process p = pb.start();
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        CompletableFuture<String> ready = CompletableFuture.supplyAsync(() -> {
            try {
                return out.readLine();
            } catch (IOException e) {
                return "read failed: " + e.getMessage();
            }
        });
        String line;
        try {
            line = ready.get(60, TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            p.destroyForcibly();
            throw new AssertionError("back-end did not start within 60 s; stderr: " + stderr());
        }
        if (!"READY".equals(line)) {
            p.destroyForcibly();
            fail("back-end did not start, said " + line + "; stderr: " + stderr());
        }
        return p;
    }

    private String stderr() {
        try {
            return Files.readString(dir.resolve("backend-stderr.log"));
        } catch (IOException e) {
            return "(none)";
        }
    }

    private static void kill9(Process p) throws InterruptedException {
        p.destroyForcibly(); // SIGKILL on Linux
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "the back-end process died");
        assertEquals(137, p.exitValue(), "killed by SIGKILL (128 + 9)");
    }

    /** What the front-end knows about one write. */
    private static final class Write {
        final long sector;
        final byte[] data;
        boolean acknowledged;

        Write(long sector, byte[] data) {
            this.sector = sector;
            this.data = data;
        }
    }

    /**
     * @param hang true: the back-end stops completing after a random number of writes and is killed with
     *        requests surely in flight; false: it is killed at a random point of the running stream
     */
    @ParameterizedTest(name = "back-end hangs before the kill: {0}, packed ring: {1}")
    @CsvSource({"true, false", "false, false", "true, true", "false, true"})
    void everyAcknowledgedWriteShouldBeOnDiskAndEveryOtherResubmitted(boolean hang, boolean packed) throws Exception {
        long seed = System.nanoTime();
        SplittableRandom random = new SplittableRandom(seed);
        String context = "seed=" + seed + ", hang=" + hang + ", packed=" + packed;
        Path image = dir.resolve("disk.img");
        try (FileChannel f = FileChannel.open(image, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            f.truncate(0);
            f.write(java.nio.ByteBuffer.allocate(1), IMAGE_BYTES - 1);
        }
        Path socket = dir.resolve("crash.sock");
        int killAfter = 100 + random.nextInt(TOTAL_WRITES / 2);
        Process backend = startBackend(socket, image, hang ? killAfter : -1);
        Write[] writes = new Write[TOTAL_WRITES];
        Write[] inSlot = new Write[DEPTH];
        int submitted = 0;
        int acknowledged = 0;
        int inFlightAtCrash;
        long features = VirtioFeature.maskOf(VirtioFeature.VERSION_1, VirtioFeature.EVENT_IDX)
                | (packed ? VirtioFeature.RING_PACKED.mask() : 0);
        long protocol = ProtocolFeature.maskOf(ProtocolFeature.INFLIGHT_SHMFD, ProtocolFeature.REPLY_ACK);
        try (Rig rig = Rig.connect(socket, 8L << 20)) {
            long acked = rig.negotiate(features, true, protocol);
            try (VhostUserFrontend.Inflight inflight = rig.fe.getInflightFd(1, RING)) {
                rig.setMemTable();
                Rig.Ring ring = rig.ring(0, RING, acked, DEPTH, BLOCK);
                rig.program(ring, Rig.Setup.standard());

                // Phase 1: stream until the crash point.
                while (acknowledged < killAfter) {
                    submitted = fill(ring, random, writes, inSlot, submitted);
                    int slot = ring.await(10_000);
                    acknowledged += complete(ring, slot, inSlot, context);
                    if (hang && acknowledged == killAfter) {
                        // Let the hung back-end take what is on the ring (and log it) before the kill.
                        submitted = fill(ring, random, writes, inSlot, submitted);
                        assertEquals(-1, ring.poll(300), "the back-end is hung, " + context);
                    }
                }
                submitted = fill(ring, random, writes, inSlot, submitted);
                kill9(backend);
                // Completions that made it before the kill are acknowledged too.
                int slot;
                while ((slot = ring.poll(0)) >= 0) {
                    acknowledged += complete(ring, slot, inSlot, context);
                }
                inFlightAtCrash = (int) Arrays.stream(inSlot).filter(w -> w != null).count();
                if (hang) {
                    assertEquals(DEPTH, inFlightAtCrash, "every slot was in flight at the crash, " + context);
                }
                int acknowledgedBefore = acknowledged;
                // Every write acknowledged before the crash is on disk now, while no back-end runs.
                verifyOnDisk(image, writes, w -> w.acknowledged, context);

                // Phase 2: a new back-end, the kept inflight log, the rings again.
                backend = startBackend(socket, image, -1);
                rig.reconnect(socket);
                rig.negotiate(features, true, protocol);
                rig.fe.setInflightFd(inflight);
                rig.setMemTable();
                rig.program(ring, Rig.Setup.standard(), knownBase(rig, ring, packed, acknowledged));
                // The requests in flight at the crash complete without being posted again.
                for (int i = 0; i < inFlightAtCrash; i++) {
                    acknowledged += complete(ring, ring.await(10_000), inSlot, context);
                }
                assertTrue(Arrays.stream(inSlot).allMatch(w -> w == null), "all resubmitted requests completed, " + context);
                assertEquals(inFlightAtCrash, acknowledged - acknowledgedBefore, context);
                // And the stream goes on.
                while (acknowledged < TOTAL_WRITES) {
                    if (submitted < TOTAL_WRITES) {
                        submitted = fill(ring, random, writes, inSlot, submitted);
                    }
                    acknowledged += complete(ring, ring.await(10_000), inSlot, context);
                }
            }
        } finally {
            if (backend.isAlive()) {
                kill9(backend);
            }
        }
        assertEquals(TOTAL_WRITES, acknowledged, context);
        assertTrue(Arrays.stream(writes).allMatch(w -> w.acknowledged), "zero lost, " + context);
        verifyOnDisk(image, writes, w -> true, context);
        System.out.println("crash test: " + context + ", killed after " + killAfter + " acknowledged writes, "
                + inFlightAtCrash + " in flight at the crash, all completed by the new back-end");
        assertFalse(hang && inFlightAtCrash == 0, "the hang variant must leave requests in flight");
    }

    /**
     * The ring state the front-end knows after losing its back-end, as QEMU restores it: split, the used
     * index in the ring; packed, the used position (each write took three descriptors) as both the avail
     * and the used half of the vring base word.
     */
    private static int knownBase(Rig rig, Rig.Ring ring, boolean packed, int completed) throws IOException {
        if (!packed) {
            return rig.memory.slice(ring.dq.config().deviceAddr() + 2, 2).get(LE_U16, 0) & 0xffff;
        }
        long slots = 3L * completed;
        int slot = (int) (slots % RING);
        int wrap = (slots / RING) % 2 == 0 ? 1 : 0;
        return slot | wrap << 15 | slot << 16 | wrap << 31;
    }

    /** Posts writes in every free slot, each to its own sector, and kicks. */
    private static int fill(Rig.Ring ring, SplittableRandom random, Write[] writes, Write[] inSlot, int submitted)
            throws IOException {
        boolean any = false;
        for (int s = 0; s < inSlot.length && submitted < writes.length; s++) {
            if (inSlot[s] != null) {
                continue;
            }
            byte[] data = new byte[BLOCK];
            random.nextBytes(data);
            Write w = new Write((long) submitted * (BLOCK / 512), data);
            writes[submitted++] = w;
            inSlot[s] = w;
            MemorySegment.copy(data, 0, ring.data(s), ValueLayout.JAVA_BYTE, 0, BLOCK);
            ring.submit(s, RamBlkDevice.T_OUT, w.sector, BLOCK, false, false);
            any = true;
        }
        if (any) {
            ring.kick();
        }
        return submitted;
    }

    private static int complete(Rig.Ring ring, int slot, Write[] inSlot, String context) throws IOException {
        Write w = inSlot[slot];
        assertTrue(w != null, "a completion for an empty slot " + slot + ", " + context);
        assertEquals(RamBlkDevice.S_OK, ring.status(slot), "write status, " + context);
        assertFalse(w.acknowledged, "acknowledged twice, " + context);
        w.acknowledged = true;
        inSlot[slot] = null;
        return 1;
    }

    private static void verifyOnDisk(Path image, Write[] writes, java.util.function.Predicate<Write> which, String context)
            throws IOException {
        byte[] disk = Files.readAllBytes(image);
        for (Write w : writes) {
            if (w != null && which.test(w)) {
                int at = (int) (w.sector * 512);
                assertArrayEquals(w.data, Arrays.copyOfRange(disk, at, at + BLOCK), "sector " + w.sector + ", " + context);
            }
        }
    }
}
