package dev.outproc.vhost.backend;

import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.vhost.message.ProtocolFeature;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Connection after connection against one back-end: connect, negotiate, SET_MEM_TABLE, program and start
 * a ring (split or packed, by turns), write a block and read it back, disconnect. After the cycles the
 * process must hold what it held after the warm-up: the same open fds, no more threads, the same memfd
 * mappings (guest memory of every past connection unmapped), mapped bytes and heap after GC within a small
 * allowance for the JIT and the collector. {@code -Dsoak.cycles=N} sets the count (200 in a normal build;
 * the {@code soak} profile runs 10,000).
 */
class SoakTest {
    private static final long MEMORY = 1L << 20;
    private static final int WARM_UP = 20;
    /** Room for code cache, metaspace and collector growth; a leak of one 1 MiB region per cycle exceeds it. */
    private static final long MAPPED_ALLOWANCE = 96L << 20;
    private static final long HEAP_ALLOWANCE = 16L << 20;

    @TempDir
    Path dir;

    @Test
    @Timeout(value = 4, unit = TimeUnit.HOURS)
    void connectionCyclesLeaveNothingBehind() throws Exception {
        int cycles = Integer.getInteger("soak.cycles", 200);
        long seed = Long.getLong("soak.seed", System.nanoTime());
        System.out.println("SoakTest seed=" + seed + " cycles=" + cycles);
        SplittableRandom random = new SplittableRandom(seed);
        Path socket = dir.resolve("soak.sock");
        long features = VirtioFeature.VERSION_1.mask();
        RamBlkDevice device = RamBlkDevice.ram(4 << 20, 1);
        try (Rig.Served served = Rig.serve(socket, device)) {
            ProcessResources before = null;
            for (int i = 0; i < WARM_UP + cycles; i++) {
                if (i == WARM_UP) {
                    before = ProcessResources.settle(ProcessResources.now());
                    System.out.println("SoakTest before: " + before);
                }
                cycle(socket, i, random, features);
                // The test device records its callbacks; that log is the test's, not the back-end's.
                device.events.clear();
            }
            ProcessResources after = ProcessResources.settle(before);
            System.out.println("SoakTest after " + cycles + " cycles: " + after);
            assertEquals(WARM_UP + cycles, served.server().connections(), "connections served");
            assertTrue(after.fds() <= before.fds(), "open fds " + before.fds() + " -> " + after.fds() + " (an fd open before may close meanwhile; more is a leak): " + TestFds.snapshot());
            assertTrue(after.threads() <= before.threads(), "threads " + before.threads() + " -> " + after.threads());
            assertTrue(after.memfdMappings() <= before.memfdMappings(), "memfd mappings " + before.memfdMappings() + " -> " + after.memfdMappings());
            assertTrue(after.mappedBytes() - before.mappedBytes() < MAPPED_ALLOWANCE,
                    "mapped bytes grew by " + ((after.mappedBytes() - before.mappedBytes()) >> 20) + " MiB");
            assertTrue(after.heapBytes() - before.heapBytes() < HEAP_ALLOWANCE,
                    "heap after GC grew by " + ((after.heapBytes() - before.heapBytes()) >> 10) + " KiB");
        }
    }

    private static void cycle(Path socket, int i, SplittableRandom random, long features) throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.negotiate(features | (i % 2 == 1 ? VirtioFeature.RING_PACKED.mask() : 0), true,
                    ProtocolFeature.REPLY_ACK.mask());
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, acked, 2, 4096);
            rig.program(ring, Rig.Setup.standard());
            byte[] block = new byte[4096];
            random.nextBytes(block);
            long sector = random.nextInt(1024) * 8L;
            assertEquals(RamBlkDevice.S_OK, ring.write(0, sector, block), "write in cycle " + i);
            byte[] back = new byte[4096];
            assertEquals(RamBlkDevice.S_OK, ring.read(1, sector, back), "read in cycle " + i);
            if (!Arrays.equals(block, back)) {
                assertArrayEquals(block, back, "data read back in cycle " + i);
            }
        }
    }
}
