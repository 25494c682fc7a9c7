package dev.outproc.vhost.connection;

import java.lang.foreign.MemorySegment;

/**
 * Slices {@code [0, n)} of one buffer, created on first use and kept, so that sending or receiving a
 * message of a size seen before allocates nothing (the channel reads and writes whole segments).
 */
final class SliceCache {
    private final MemorySegment buffer;
    private final MemorySegment[] slices;

    SliceCache(MemorySegment buffer) {
        this.buffer = buffer;
        this.slices = new MemorySegment[Math.toIntExact(buffer.byteSize()) + 1];
    }

    MemorySegment prefix(int length) {
        MemorySegment s = slices[length];
        if (s == null) {
            s = buffer.asSlice(0, length);
            slices[length] = s;
        }
        return s;
    }
}
