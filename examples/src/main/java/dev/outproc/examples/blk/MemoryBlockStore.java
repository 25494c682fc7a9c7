package dev.outproc.examples.blk;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** A {@link BlockStore} in memory (a RAM disk), independent of {@link FileBlockStore}. */
public final class MemoryBlockStore implements BlockStore {
    private final Arena arena = Arena.ofShared();
    private final MemorySegment data;
    private final boolean readOnly;

    /**
     * Creates a zeroed RAM disk.
     *
     * @param sizeBytes size, a non-zero multiple of 512
     * @param readOnly refuse writes
     */
    public MemoryBlockStore(long sizeBytes, boolean readOnly) {
        if (sizeBytes <= 0 || sizeBytes % 512 != 0) {
            throw new IllegalArgumentException("size must be a non-zero multiple of 512, size=" + sizeBytes);
        }
        this.data = arena.allocate(sizeBytes, 4096);
        this.readOnly = readOnly;
    }

    /** {@return the disk's bytes} */
    public MemorySegment contents() {
        return data;
    }

    @Override
    public long sizeBytes() {
        return data.byteSize();
    }

    @Override
    public boolean readOnly() {
        return readOnly;
    }

    @Override
    public void read(long offset, MemorySegment destination) {
        MemorySegment.copy(data, offset, destination, 0, destination.byteSize());
    }

    @Override
    public void write(long offset, MemorySegment source) {
        MemorySegment.copy(source, 0, data, offset, source.byteSize());
    }

    @Override
    public void flush() {
        // memory is as durable as it gets
    }

    @Override
    public void writeZeroes(long offset, long length) {
        data.asSlice(offset, length).fill((byte) 0);
    }

    @Override
    public String describe() {
        return "memory (" + (data.byteSize() >> 20) + " MiB" + (readOnly ? ", read-only" : "") + ")";
    }

    @Override
    public void close() {
        arena.close();
    }
}
