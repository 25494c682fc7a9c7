package dev.outproc.core.virtqueue;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;

import java.lang.foreign.MemorySegment;
import java.util.List;

/** memfd-backed guest RAM for ring tests: one region at {@link #BASE}, with a bump allocator over it. */
final class GuestRam implements AutoCloseable {
    /** Not zero, so a forgotten base address shows up as an out-of-memory access. */
    static final long BASE = 0x10_0000L;

    final GuestRegion region;
    final GuestMemory memory;
    final GpaAllocator allocator;

    GuestRam(long sizeBytes) throws Exception {
        region = GuestRegion.allocate(BASE, sizeBytes, 0x7f00_0000_0000L);
        memory = GuestMemory.of(List.of(region));
        allocator = new GpaAllocator(BASE, BASE + sizeBytes);
    }

    /** {@return the bytes at a guest-physical range} */
    MemorySegment at(long gpa, long length) {
        return region.segment().asSlice(gpa - BASE, length);
    }

    /** {@return a copy of all guest memory} */
    byte[] snapshot() {
        return region.segment().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
    }

    @Override
    public void close() {
        region.close();
    }
}
