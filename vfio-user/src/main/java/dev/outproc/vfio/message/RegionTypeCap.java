package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U32;

/**
 * The body of {@code VFIO_REGION_INFO_CAP_TYPE} after its {@link InfoCapHeader} (Linux
 * {@code struct vfio_region_info_cap_type}): a device-specific region's type and subtype. Version 1.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                           type (u32)                          |
 * +---------------------------------------------------------------+
 * |                         subtype (u32)                         |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class RegionTypeCap {
    /** Offset of {@code type}. */
    public static final int TYPE_OFFSET = 0;
    /** Offset of {@code subtype}. */
    public static final int SUBTYPE_OFFSET = 4;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 8;
    /** The capability version. */
    public static final int VERSION = 1;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("type", TYPE_OFFSET, 4),
            new WireField("subtype", SUBTYPE_OFFSET, 4));

    private RegionTypeCap() {
    }

    /** Reads a RegionTypeCap in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the region type} */
        public long type() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + TYPE_OFFSET));
        }

        /** {@return the region subtype} */
        public long subtype() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + SUBTYPE_OFFSET));
        }
    }

    /** Writes a RegionTypeCap in place; holds only a segment and an offset. */
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
         * Sets the region type.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder type(long value) {
            WireLayout.checkU32("type", value);
            segment.set(NATIVE_U32, offset + TYPE_OFFSET, (int) value);
            return this;
        }

        /**
         * Sets the region subtype.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder subtype(long value) {
            WireLayout.checkU32("subtype", value);
            segment.set(NATIVE_U32, offset + SUBTYPE_OFFSET, (int) value);
            return this;
        }
    }
}
