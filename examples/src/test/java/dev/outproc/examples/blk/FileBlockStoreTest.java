package dev.outproc.examples.blk;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Finding: a descriptor of 2 GiB or more made {@code asByteBuffer} throw inside the ring's processing
 * (a ByteBuffer holds less than 2 GiB), breaking the ring. The store now moves such buffers in pieces; the
 * piece size is a parameter here so that the piecing is checked on small buffers.
 */
class FileBlockStoreTest {
    @TempDir
    Path dir;

    /**
     * A buffer of 2 GiB + 4 KiB at an address that is not mapped: one asByteBuffer call over it threw
     * IllegalStateException before any I/O. In pieces, the first piece reaches the kernel, which answers
     * EFAULT: an IOException the device reports as an I/O error, as it would for any unreadable buffer.
     */
    @Test
    void aBufferOfTwoGiBOrMoreShouldReachTheFileInPieces() throws Exception {
        MemorySegment huge = MemorySegment.NULL.reinterpret((2L << 30) + 4096);
        assertThrows(IllegalStateException.class, huge::asByteBuffer, "what a single call hit");
        Path image = dir.resolve("big.img");
        Files.write(image, new byte[4096]);
        try (FileBlockStore store = FileBlockStore.open(image, false)) {
            IOException e = assertThrows(IOException.class, () -> store.write(0, huge));
            assertTrue(String.valueOf(e.getMessage()).contains("Bad address"), String.valueOf(e));
        }
    }

    @Test
    void piecesShouldReadAndWriteLikeOneCall() throws Exception {
        long seed = System.nanoTime();
        SplittableRandom random = new SplittableRandom(seed);
        Path image = dir.resolve("disk.img");
        Files.write(image, new byte[64 * 1024]);
        try (FileBlockStore store = FileBlockStore.open(image, false); Arena arena = Arena.ofConfined()) {
            byte[] data = new byte[20 * 1024 + 512];
            random.nextBytes(data);
            MemorySegment source = arena.allocate(data.length);
            MemorySegment.copy(data, 0, source, ValueLayout.JAVA_BYTE, 0, data.length);
            store.write(1024, source, 4096 + 512 * random.nextInt(4));
            MemorySegment back = arena.allocate(data.length);
            store.read(1024, back, 512 * (1 + random.nextInt(8)));
            assertArrayEquals(data, back.toArray(ValueLayout.JAVA_BYTE), "seed=" + seed);
            // Past the end of the file: what is there, then zeroes, also across pieces.
            MemorySegment tail = arena.allocate(16 * 1024);
            tail.fill((byte) 0x55);
            store.read(60 * 1024, tail, 1024);
            byte[] expected = new byte[16 * 1024];
            assertArrayEquals(expected, tail.toArray(ValueLayout.JAVA_BYTE), "seed=" + seed);
        }
    }
}
