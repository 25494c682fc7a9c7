package dev.outproc.vfio.message;

import java.lang.foreign.MemorySegment;

/**
 * What every payload decoder and encoder holds: a segment and the offset of the structure in it
 * (Agrona/SBE flyweight style). {@link #wrap} points it at a structure and returns the concrete type, so
 * calls chain; nothing is copied and nothing is allocated.
 *
 * @param <T> the concrete decoder or encoder
 */
abstract class Flyweight<T extends Flyweight<T>> {
    MemorySegment segment;
    long offset;

    /**
     * Points this flyweight at a structure.
     *
     * @param segment the buffer
     * @param offset where the structure starts
     * @return this flyweight
     */
    @SuppressWarnings("unchecked")
    public T wrap(MemorySegment segment, long offset) {
        this.segment = segment;
        this.offset = offset;
        return (T) this;
    }

    /** {@return the wrapped segment} */
    public MemorySegment segment() {
        return segment;
    }

    /**
     * {@return where the structure starts in the segment} (named apart from the {@code offset} fields
     * several structures have)
     */
    public long position() {
        return offset;
    }
}
