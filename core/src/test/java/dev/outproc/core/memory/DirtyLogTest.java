package dev.outproc.core.memory;

import dev.outproc.core.fd.OwnedFd;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.LongStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DirtyLogTest {
    static LongStream seeds() {
        long base = Long.getLong("outproc.seed", System.nanoTime());
        return LongStream.range(0, 25).map(i -> base + i);
    }

    /** Marks random ranges and compares with a reference model: a BitSet marked page by page. */
    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void shouldMarkExactlyThePagesOfRandomRanges(long seed) throws Exception {
        SplittableRandom random = new SplittableRandom(seed);
        long pageSize = 1L << (12 + random.nextInt(3));
        int bitmapBytes = 8 * (1 + random.nextInt(64));
        long pages = bitmapBytes * 8L;
        try (OwnedFd fd = MemFd.create("log", bitmapBytes);
             DirtyLog log = DirtyLog.map(fd, 0, bitmapBytes, pageSize)) {
            BitSet model = new BitSet();
            for (int i = 0; i < 200; i++) {
                long gpa = random.nextLong(0, pages * pageSize + pageSize);
                long length = random.nextInt(4) == 0 ? random.nextLong(0, 64 * pageSize) : random.nextLong(0, 3 * pageSize);
                boolean inRange = log.mark(gpa, length);
                boolean modelInRange = true;
                if (length > 0) {
                    for (long p = gpa / pageSize; p <= (gpa + length - 1) / pageSize; p++) {
                        if (p < pages) {
                            model.set((int) p);
                        } else {
                            modelInRange = false;
                        }
                    }
                }
                assertEquals(modelInRange, inRange, "seed=" + seed + " gpa=" + gpa + " len=" + length);
            }
            for (long p = 0; p < pages; p++) {
                assertEquals(model.get((int) p), log.isDirty(p), "seed=" + seed + " page=" + p);
                // The spec's byte-wise view of the same bit.
                byte b = log.bitmap().get(ValueLayout.JAVA_BYTE, p / 8);
                assertEquals(model.get((int) p), (b & (1 << (p % 8))) != 0, "seed=" + seed + " byte view page=" + p);
            }
            List<Long> reported = new ArrayList<>();
            long n = log.readAndClear(reported::add);
            assertEquals(model.cardinality(), n, "seed=" + seed);
            assertEquals(model.stream().mapToLong(i -> i).boxed().toList(), reported, "seed=" + seed);
            assertEquals(0, log.readAndClear(p -> { }), "seed=" + seed + ": cleared");
        }
    }

    @Test
    void shouldNotLoseBitsUnderConcurrentMarking() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment bitmap = arena.allocate(64, 8);
            DirtyLog log = DirtyLog.over(bitmap, 4096);
            Thread[] threads = new Thread[4];
            for (int t = 0; t < threads.length; t++) {
                final int offset = t;
                threads[t] = Thread.ofPlatform().start(() -> {
                    for (long p = offset; p < 512; p += threads.length) {
                        log.mark(p * 4096, 1);
                    }
                });
            }
            for (Thread t : threads) {
                t.join();
            }
            assertEquals(512, log.readAndClear(p -> { }));
        }
    }

    @Test
    void shouldSizeBitmapForMemory() {
        assertEquals(8, DirtyLog.bitmapBytesFor(4096, 4096));
        assertEquals(8, DirtyLog.bitmapBytesFor(64 * 4096, 4096));
        assertEquals(16, DirtyLog.bitmapBytesFor(65 * 4096, 4096));
        assertTrue(DirtyLog.over(MemorySegment.ofArray(new long[1]), 4096).mark(0, 0));
        assertFalse(DirtyLog.over(MemorySegment.ofArray(new long[1]), 4096).mark(-4096, 8192));
    }
}
