package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U64;

/**
 * The payload of {@code VFIO_USER_DMA_READ} and {@code VFIO_USER_DMA_WRITE} as the specification and libvfio-user
 * lay it out: a DMA address and a 64-bit count; DMA_WRITE commands and DMA_READ replies carry the data after
 * the fixed part. QEMU's client lays it out differently ({@code u64 offset; u32 count;} with data at
 * {@link #QEMU_DATA_OFFSET}): see {@link DmaAccessLayout}.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                         address (u64)                         |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                          count (u64)                          |
 * |                                                               |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class DmaAccess {
    /** Offset of {@code address}. */
    public static final int ADDRESS_OFFSET = 0;
    /** Offset of {@code count}. */
    public static final int COUNT_OFFSET = 8;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 16;
    /** Where QEMU's {@code VFIOUserDMARW} puts the data (after {@code u64 offset; u32 count}). */
    public static final int QEMU_DATA_OFFSET = 12;
    /** The DMA_WRITE reply payload the specification shows: {@code u64 address; u32 count}. */
    public static final int WRITE_REPLY_SPEC_LENGTH = 12;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("address", ADDRESS_OFFSET, 8),
            new WireField("count", COUNT_OFFSET, 8));

    private DmaAccess() {
    }

    /** Reads a DmaAccess in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the DMA address} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long address() {
            return segment.get(NATIVE_U64, offset + ADDRESS_OFFSET);
        }

        /** {@return the number of bytes} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long count() {
            return segment.get(NATIVE_U64, offset + COUNT_OFFSET);
        }

        /** {@return the offset in the segment where the data after the fixed part starts} */
        public long dataOffset() {
            return offset + ENCODED_LENGTH;
        }

    }

    /** Writes a DmaAccess in place; holds only a segment and an offset. */
    public static final class Encoder extends Flyweight<Encoder> {
        /** Creates an unwrapped encoder. */
        public Encoder() {
        }

        /**
         * Zeroes the fixed part (reserved fields included).
         *
         * @return this encoder
         */
        public Encoder clear() {
            segment.asSlice(offset, ENCODED_LENGTH).fill((byte) 0);
            return this;
        }

        /**
         * Sets the DMA address.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder address(long value) {
            segment.set(NATIVE_U64, offset + ADDRESS_OFFSET, value);
            return this;
        }

        /**
         * Sets the number of bytes.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder count(long value) {
            segment.set(NATIVE_U64, offset + COUNT_OFFSET, value);
            return this;
        }

        /** {@return the offset in the segment where the data after the fixed part starts} */
        public long dataOffset() {
            return offset + ENCODED_LENGTH;
        }

    }
}
