package dev.outproc.core.virtqueue;

import dev.outproc.core.virtio.VirtioFeature;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * {@link DescriptorChain#copyReadableTo}: over random buffer splits on both sides (zero-length buffers
 * included) it writes exactly what a copy through a bounce buffer ({@code readReadable} then
 * {@code writeWritable}) writes, and refuses ranges past either stream. The seed is printed in every message.
 */
class ChainToChainCopyTest {
    private static final long FEATURES = VirtioFeature.INDIRECT_DESC.mask();

    /** Posts a chain of readable buffers of the given lengths, then writable ones; returns the buffers' GPAs. */
    private static long[] post(DriverQueue driver, long base, int[] readable, int[] writable) throws VirtqueueException {
        long[] gpas = new long[readable.length + writable.length];
        long at = base;
        int i = 0;
        for (int len : readable) {
            gpas[i++] = at;
            driver.add(at, len, false);
            at += len + 16;
        }
        for (int len : writable) {
            gpas[i++] = at;
            driver.add(at, len, true);
            at += len + 16;
        }
        if (driver.post(false) < 0) {
            throw new IllegalStateException("ring full");
        }
        driver.publish();
        return gpas;
    }

    private static int[] split(SplittableRandom random, int total) {
        int parts = 1 + random.nextInt(5);
        int[] lengths = new int[parts];
        int left = total;
        for (int p = 0; p < parts - 1; p++) {
            lengths[p] = random.nextInt(left + 1); // zero-length buffers too
            left -= lengths[p];
        }
        lengths[parts - 1] = left;
        return lengths;
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void shouldCopyWhatABounceBufferWouldCopy(boolean packed) throws Exception {
        long seed = System.nanoTime();
        SplittableRandom random = new SplittableRandom(seed);
        for (int round = 0; round < 200; round++) {
            try (GuestRam ram = new GuestRam(4 << 20)) {
                Rig rig = Rig.create(ram, packed, 16, FEATURES, 0);
                long data = ram.allocator.allocate(1 << 20, 4096);
                int sourceBytes = 1 + random.nextInt(3000);
                int targetBytes = 1 + random.nextInt(3000);
                int[] sourceSplit = split(random, sourceBytes);
                int[] targetSplit = split(random, targetBytes);
                long[] sourceGpas = post(rig.driver(), data, sourceSplit, new int[0]);
                long[] targetGpas = post(rig.driver(), data + (512 << 10), new int[0], targetSplit);
                byte[] sourceBytesContent = new byte[sourceBytes];
                random.nextBytes(sourceBytesContent);
                int at = 0;
                for (int p = 0; p < sourceSplit.length; p++) {
                    MemorySegment.copy(sourceBytesContent, at, ram.at(sourceGpas[p], sourceSplit[p]), ValueLayout.JAVA_BYTE, 0, sourceSplit[p]);
                    at += sourceSplit[p];
                }
                DescriptorChain source = rig.device().pop();
                DescriptorChain target = rig.device().pop();
                int offset = random.nextInt(sourceBytes);
                int targetOffset = random.nextInt(targetBytes);
                int length = random.nextInt(Math.min(sourceBytes - offset, targetBytes - targetOffset) + 1);
                String context = "seed=" + seed + " round " + round + " source " + java.util.Arrays.toString(sourceSplit)
                        + " target " + java.util.Arrays.toString(targetSplit) + " offset " + offset + " targetOffset "
                        + targetOffset + " length " + length;
                source.copyReadableTo(offset, target, targetOffset, length);
                byte[] expected = new byte[targetBytes];
                System.arraycopy(sourceBytesContent, offset, expected, targetOffset, length);
                byte[] written = new byte[targetBytes];
                int w = 0;
                for (int p = 0; p < targetSplit.length; p++) {
                    MemorySegment.copy(ram.at(targetGpas[p], targetSplit[p]), ValueLayout.JAVA_BYTE, 0,
                            written, w, targetSplit[p]);
                    w += targetSplit[p];
                }
                assertArrayEquals(expected, written, context);
                assertEquals(VirtqueueException.Reason.BUFFER_TOO_SHORT, assertThrows(VirtqueueException.class,
                        () -> source.copyReadableTo(offset, target, targetBytes - length + 1, length + (targetBytes - targetOffset))).reason(), context);
                assertEquals(VirtqueueException.Reason.BUFFER_TOO_SHORT, assertThrows(VirtqueueException.class,
                        () -> source.copyReadableTo(sourceBytes, target, 0, 1)).reason(), context);
            }
        }
    }
}
