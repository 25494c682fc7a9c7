package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U32;
import static dev.outproc.vfio.message.WireLayout.NATIVE_U64;

/**
 * One write of {@code VFIO_USER_REGION_WRITE_MULTI} (vfio-user.rst, "Single Device Write Format"): up to 8
 * bytes for one region offset, in an 8-byte data field.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                          offset (u64)                         |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                          region (u32)                         |
 * +---------------------------------------------------------------+
 * |                          count (u32)                          |
 * +---------------------------------------------------------------+
 * |                           data (u64)                          |
 * |                                                               |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class RegionWriteMultiEntry {
    /** Offset of {@code offset}. */
    public static final int OFFSET_OFFSET = 0;
    /** Offset of {@code region}. */
    public static final int REGION_OFFSET = 8;
    /** Offset of {@code count}. */
    public static final int COUNT_OFFSET = 12;
    /** Offset of {@code data}. */
    public static final int DATA_OFFSET = 16;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 24;
    /** The most bytes one entry writes. */
    public static final int MAX_DATA = 8;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("offset", OFFSET_OFFSET, 8),
            new WireField("region", REGION_OFFSET, 4),
            new WireField("count", COUNT_OFFSET, 4),
            new WireField("data", DATA_OFFSET, 8));

    private RegionWriteMultiEntry() {
    }

    /** Reads a RegionWriteMultiEntry in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the offset in the region} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long offset() {
            return segment.get(NATIVE_U64, offset + OFFSET_OFFSET);
        }

        /** {@return the region index} */
        public long region() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + REGION_OFFSET));
        }

        /** {@return the number of bytes (at most 8)} */
        public long count() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + COUNT_OFFSET));
        }

        /** {@return the data bytes (the first {@code count} bytes count)} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long data() {
            return segment.get(NATIVE_U64, offset + DATA_OFFSET);
        }
    }

    /** Writes a RegionWriteMultiEntry in place; holds only a segment and an offset. */
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
         * Sets the offset in the region.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder offset(long value) {
            segment.set(NATIVE_U64, offset + OFFSET_OFFSET, value);
            return this;
        }

        /**
         * Sets the region index.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder region(long value) {
            WireLayout.checkU32("region", value);
            segment.set(NATIVE_U32, offset + REGION_OFFSET, (int) value);
            return this;
        }

        /**
         * Sets the number of bytes (at most 8).
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder count(long value) {
            WireLayout.checkU32("count", value);
            segment.set(NATIVE_U32, offset + COUNT_OFFSET, (int) value);
            return this;
        }

        /**
         * Sets the data bytes (the first {@code count} bytes count).
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder data(long value) {
            segment.set(NATIVE_U64, offset + DATA_OFFSET, value);
            return this;
        }
    }
}
