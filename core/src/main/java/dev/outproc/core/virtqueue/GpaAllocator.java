package dev.outproc.core.virtqueue;

import dev.outproc.core.memory.Unsigned;

/**
 * A bump allocator of guest-physical address ranges, for a driver (a front-end, a test, a benchmark)
 * that lays out rings and buffers in guest memory it owns. Nothing is ever freed.
 */
public final class GpaAllocator {
    private final long end;
    private long next;

    /**
     * Creates an allocator over {@code [start, end)}.
     *
     * @param start first usable guest-physical address
     * @param end one past the last usable address
     */
    public GpaAllocator(long start, long end) {
        if (Long.compareUnsigned(start, end) > 0) {
            throw new IllegalArgumentException("start after end, start=" + Unsigned.hex(start) + ", end=" + Unsigned.hex(end));
        }
        this.next = start;
        this.end = end;
    }

    /**
     * Takes a range.
     *
     * @param bytes size
     * @param alignment a power of two
     * @return the range's guest-physical address
     * @throws IllegalStateException when the space is exhausted
     */
    public long allocate(long bytes, long alignment) {
        if (Long.bitCount(alignment) != 1 || bytes < 0) {
            throw new IllegalArgumentException("alignment must be a power of two and bytes >= 0, alignment=" + alignment
                    + ", bytes=" + bytes);
        }
        long start = (next + alignment - 1) & -alignment;
        if (Long.compareUnsigned(start, next) < 0 || Long.compareUnsigned(end - start, bytes) < 0
                || Long.compareUnsigned(start, end) > 0) {
            throw new IllegalStateException("guest address space exhausted, want=" + bytes + ", next=" + Unsigned.hex(next)
                    + ", end=" + Unsigned.hex(end));
        }
        next = start + bytes;
        return start;
    }

    /** {@return the next free address (before alignment)} */
    public long next() {
        return next;
    }
}
