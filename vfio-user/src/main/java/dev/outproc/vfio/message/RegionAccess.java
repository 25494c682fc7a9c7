package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U32;
import static dev.outproc.vfio.message.WireLayout.NATIVE_U64;

/**
 * The payload of {@code VFIO_USER_REGION_READ} and {@code VFIO_USER_REGION_WRITE} (vfio-user.rst): a region
 * index, an offset in it and a byte count. REGION_WRITE commands and REGION_READ replies carry {@code count}
 * data bytes after the fixed part.
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
 * </pre>
 */
public final class RegionAccess {
    /** Offset of {@code offset}. */
    public static final int OFFSET_OFFSET = 0;
    /** Offset of {@code region}. */
    public static final int REGION_OFFSET = 8;
    /** Offset of {@code count}. */
    public static final int COUNT_OFFSET = 12;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 16;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("offset", OFFSET_OFFSET, 8),
            new WireField("region", REGION_OFFSET, 4),
            new WireField("count", COUNT_OFFSET, 4));

    private RegionAccess() {
    }

    /** Reads a RegionAccess in place; holds only a segment and an offset. */
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

        /** {@return the number of bytes} */
        public long count() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + COUNT_OFFSET));
        }

        /** {@return the offset in the segment where the data after the fixed part starts} */
        public long dataOffset() {
            return offset + ENCODED_LENGTH;
        }

    }

    /** Writes a RegionAccess in place; holds only a segment and an offset. */
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
         * Sets the number of bytes.
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

        /** {@return the offset in the segment where the data after the fixed part starts} */
        public long dataOffset() {
            return offset + ENCODED_LENGTH;
        }

    }
}
