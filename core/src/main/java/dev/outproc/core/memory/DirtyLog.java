package dev.outproc.core.memory;

import dev.outproc.core.fd.NativeException;
import dev.outproc.core.fd.OwnedFd;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;
import java.util.function.LongConsumer;

/**
 * A dirty-page bitmap in shared memory: bit {@code p} stands for guest page {@code p}
 * ({@code guestPhysAddr / pageSize}). It is the log of vhost-user {@code SET_LOG_BASE} and of
 * vfio-user DMA logging.
 *
 * <p>Bits are set with an atomic OR on aligned little-endian 64-bit words, which is the same as the
 * spec's byte-wise {@code log[page / 8] |= 1 << (page % 8)}: page {@code p} is bit {@code p % 64} of
 * word {@code p / 64}. Marking allocates nothing.
 */
public final class DirtyLog implements AutoCloseable {
    /** The page size of vhost-user dirty logging. */
    public static final long DEFAULT_PAGE_SIZE = 4096;

    private static final VarHandle WORD = Layouts.LE_U64_ALIGNED.varHandle();

    private final SharedMapping mapping;
    private final MemorySegment bitmap;
    private final long pageSize;
    private final int pageShift;
    private final long pageCount;

    private DirtyLog(SharedMapping mapping, MemorySegment bitmap, long pageSize) {
        if (Long.bitCount(pageSize) != 1 || pageSize < 512) {
            throw new IllegalArgumentException("page size must be a power of two >= 512, pageSize=" + pageSize);
        }
        if (bitmap.byteSize() % 8 != 0 || bitmap.address() % 8 != 0) {
            throw new IllegalArgumentException("dirty bitmap must be 8-byte aligned and a multiple of 8 bytes, size="
                    + bitmap.byteSize());
        }
        this.mapping = mapping;
        this.bitmap = bitmap;
        this.pageSize = pageSize;
        this.pageShift = Long.numberOfTrailingZeros(pageSize);
        this.pageCount = bitmap.byteSize() * 8;
    }

    /**
     * Maps a log that a peer shares ({@code SET_LOG_BASE}: fd, size and offset).
     *
     * @param fd the shared memory
     * @param offset where the bitmap starts in the fd
     * @param sizeBytes the bitmap's size (a multiple of 8)
     * @param pageSize bytes per bit
     * @return the log
     * @throws NativeException when mmap fails
     */
    public static DirtyLog map(OwnedFd fd, long offset, long sizeBytes, long pageSize) throws NativeException {
        if (sizeBytes % 8 != 0 || offset % 8 != 0) {
            throw new IllegalArgumentException("dirty log size and offset must be multiples of 8, size=" + sizeBytes
                    + ", offset=" + offset);
        }
        SharedMapping mapping = SharedMapping.map(fd.get(), offset, sizeBytes, true);
        return new DirtyLog(mapping, mapping.segment(), pageSize);
    }

    /**
     * Uses a segment the caller owns (a front-end's own log, a test's buffer).
     *
     * @param bitmap the bitmap (8-byte aligned, a multiple of 8 bytes)
     * @param pageSize bytes per bit
     * @return the log; closing it leaves the segment alone
     */
    public static DirtyLog over(MemorySegment bitmap, long pageSize) {
        return new DirtyLog(null, bitmap, pageSize);
    }

    /**
     * {@return how many bitmap bytes cover {@code memoryBytes} of guest-physical space, rounded up to 8}
     *
     * @param memoryBytes highest guest-physical address + 1 to cover
     * @param pageSize bytes per bit
     */
    public static long bitmapBytesFor(long memoryBytes, long pageSize) {
        long pages = Math.ceilDiv(memoryBytes, pageSize);
        return Math.ceilDiv(pages, 64) * 8;
    }

    /** {@return bytes per bit} */
    public long pageSize() {
        return pageSize;
    }

    /** {@return how many pages the bitmap covers} */
    public long pageCount() {
        return pageCount;
    }

    /**
     * Marks every page that {@code [gpa, gpa + length)} touches. Allocates nothing.
     *
     * @param gpa guest-physical start
     * @param length byte count; 0 marks nothing
     * @return false when part of the range lies beyond the bitmap (those pages are not marked)
     */
    public boolean mark(long gpa, long length) {
        if (length == 0) {
            return true;
        }
        long first = gpa >>> pageShift;
        long lastAddress = gpa + length - 1;
        boolean inRange = true;
        if (Long.compareUnsigned(lastAddress, gpa) < 0) {
            lastAddress = -1L; // wrapped: clamp to the top of the address space
            inRange = false;
        }
        long last = lastAddress >>> pageShift;
        if (Long.compareUnsigned(last, pageCount) >= 0) {
            last = pageCount - 1;
            inRange = false;
        }
        if (Long.compareUnsigned(first, last) > 0) {
            return false;
        }
        long word = first >>> 6;
        long lastWord = last >>> 6;
        while (word <= lastWord) {
            long low = word == (first >>> 6) ? (first & 63) : 0;
            long high = word == lastWord ? (last & 63) : 63;
            long mask = (-1L >>> (63 - high)) & (-1L << low);
            long offset = word << 3;
            // Peers read the log concurrently (QEMU's migration thread): an atomic OR never loses a bit.
            if (((long) WORD.getVolatile(bitmap, offset) & mask) != mask) {
                WORD.getAndBitwiseOr(bitmap, offset, mask);
            }
            word++;
        }
        return inRange;
    }

    /**
     * {@return whether a page's bit is set}
     *
     * @param page page number
     */
    public boolean isDirty(long page) {
        if (page < 0 || page >= pageCount) {
            return false;
        }
        return (((long) WORD.getVolatile(bitmap, (page >>> 6) << 3)) & (1L << (page & 63))) != 0;
    }

    /**
     * Reads and clears the bitmap atomically word by word, reporting each dirty page in ascending order.
     *
     * @param dirtyPage receives page numbers
     * @return the number of dirty pages reported
     */
    public long readAndClear(LongConsumer dirtyPage) {
        long count = 0;
        long words = bitmap.byteSize() / 8;
        for (long w = 0; w < words; w++) {
            long bits = (long) WORD.getAndSet(bitmap, w << 3, 0L);
            while (bits != 0) {
                int bit = Long.numberOfTrailingZeros(bits);
                dirtyPage.accept((w << 6) + bit);
                bits &= bits - 1;
                count++;
            }
        }
        return count;
    }

    /** {@return the bitmap's bytes} */
    public MemorySegment bitmap() {
        return bitmap;
    }

    /** Unmaps a log made by {@link #map}; a log made by {@link #over} leaves its segment alone. */
    @Override
    public void close() {
        if (mapping != null) {
            mapping.close();
        }
    }
}
