package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U32;
import static dev.outproc.vfio.message.WireLayout.NATIVE_U64;

/**
 * The data of {@code VFIO_DEVICE_FEATURE_DMA_LOGGING_START} and {@code _STOP} (vfio-user.rst): a page size
 * and {@code num_ranges} {@link DmaLoggingRange}s inline after the fixed part (Linux passes a pointer
 * instead). Zero ranges means every write is logged.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                        page_size (u64)                        |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                        num_ranges (u32)                       |
 * +---------------------------------------------------------------+
 * |                         reserved (u32)                        |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class DmaLoggingControl {
    /** Offset of {@code page_size}. */
    public static final int PAGE_SIZE_OFFSET = 0;
    /** Offset of {@code num_ranges}. */
    public static final int NUM_RANGES_OFFSET = 8;
    /** Offset of {@code reserved}. */
    public static final int RESERVED_OFFSET = 12;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 16;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("pageSize", PAGE_SIZE_OFFSET, 8),
            new WireField("numRanges", NUM_RANGES_OFFSET, 4),
            new WireField("reserved", RESERVED_OFFSET, 4));

    private DmaLoggingControl() {
    }

    /** Reads a DmaLoggingControl in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the page size} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long pageSize() {
            return segment.get(NATIVE_U64, offset + PAGE_SIZE_OFFSET);
        }

        /** {@return the number of ranges that follow} */
        public long numRanges() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + NUM_RANGES_OFFSET));
        }

        /** {@return reserved, zero} */
        public long reserved() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + RESERVED_OFFSET));
        }

        /** {@return the offset in the segment where the data after the fixed part starts} */
        public long dataOffset() {
            return offset + ENCODED_LENGTH;
        }

    }

    /** Writes a DmaLoggingControl in place; holds only a segment and an offset. */
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
         * Sets the page size.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder pageSize(long value) {
            segment.set(NATIVE_U64, offset + PAGE_SIZE_OFFSET, value);
            return this;
        }

        /**
         * Sets the number of ranges that follow.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder numRanges(long value) {
            WireLayout.checkU32("numRanges", value);
            segment.set(NATIVE_U32, offset + NUM_RANGES_OFFSET, (int) value);
            return this;
        }

        /**
         * Sets reserved, zero.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder reserved(long value) {
            WireLayout.checkU32("reserved", value);
            segment.set(NATIVE_U32, offset + RESERVED_OFFSET, (int) value);
            return this;
        }

        /** {@return the offset in the segment where the data after the fixed part starts} */
        public long dataOffset() {
            return offset + ENCODED_LENGTH;
        }

    }
}
