package dev.outproc.vfio.message;

import java.lang.foreign.MemorySegment;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U16;
import static dev.outproc.vfio.message.WireLayout.NATIVE_U32;
import static dev.outproc.vfio.message.WireLayout.NATIVE_U64;
import static dev.outproc.vfio.message.WireLayout.NATIVE_U8;

/**
 * One field of a wire structure, described by data instead of reflection: its name (the decoder's
 * accessor name), its offset and its width. Dumps (the client's {@code info}, logging) and tests read
 * structures through it.
 *
 * @param name the accessor name
 * @param offset the offset in the structure
 * @param sizeBytes 1, 2, 4 or 8
 */
public record WireField(String name, int offset, int sizeBytes) {
    /**
     * Reads this field, zero-extended.
     *
     * @param segment the buffer
     * @param base where the structure starts
     * @return the value (unsigned; a u64 may look negative)
     */
    public long read(MemorySegment segment, long base) {
        long at = base + offset;
        return switch (sizeBytes) {
            case 1 -> Byte.toUnsignedLong(segment.get(NATIVE_U8, at));
            case 2 -> Short.toUnsignedLong(segment.get(NATIVE_U16, at));
            case 4 -> Integer.toUnsignedLong(segment.get(NATIVE_U32, at));
            case 8 -> segment.get(NATIVE_U64, at);
            default -> throw new IllegalStateException("field width " + sizeBytes);
        };
    }

    /**
     * Writes this field.
     *
     * @param segment the buffer
     * @param base where the structure starts
     * @param value the value, truncated to the field's width
     */
    public void write(MemorySegment segment, long base, long value) {
        long at = base + offset;
        switch (sizeBytes) {
            case 1 -> segment.set(NATIVE_U8, at, (byte) value);
            case 2 -> segment.set(NATIVE_U16, at, (short) value);
            case 4 -> segment.set(NATIVE_U32, at, (int) value);
            case 8 -> segment.set(NATIVE_U64, at, value);
            default -> throw new IllegalStateException("field width " + sizeBytes);
        }
    }
}
