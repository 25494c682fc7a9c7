package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U16;
import static dev.outproc.vfio.message.WireLayout.NATIVE_U32;

/**
 * The header of every capability in a region-info capability chain (Linux {@code struct vfio_info_cap_header}):
 * its id, its version and the offset of the next one, counted from the start of the region-info structure
 * (0 ends the chain).
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |            id (u16)           |         version (u16)         |
 * +-------------------------------+-------------------------------+
 * |                           next (u32)                          |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class InfoCapHeader {
    /** Offset of {@code id}. */
    public static final int ID_OFFSET = 0;
    /** Offset of {@code version}. */
    public static final int VERSION_OFFSET = 2;
    /** Offset of {@code next}. */
    public static final int NEXT_OFFSET = 4;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 8;
    /** {@code VFIO_REGION_INFO_CAP_SPARSE_MMAP}. */
    public static final int CAP_SPARSE_MMAP = 1;
    /** {@code VFIO_REGION_INFO_CAP_TYPE}. */
    public static final int CAP_TYPE = 2;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("id", ID_OFFSET, 2),
            new WireField("version", VERSION_OFFSET, 2),
            new WireField("next", NEXT_OFFSET, 4));

    private InfoCapHeader() {
    }

    /** Reads a InfoCapHeader in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the capability id} */
        public int id() {
            return Short.toUnsignedInt(segment.get(NATIVE_U16, offset + ID_OFFSET));
        }

        /** {@return the capability version} */
        public int version() {
            return Short.toUnsignedInt(segment.get(NATIVE_U16, offset + VERSION_OFFSET));
        }

        /** {@return the offset of the next capability (0 ends the chain)} */
        public long next() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + NEXT_OFFSET));
        }
    }

    /** Writes a InfoCapHeader in place; holds only a segment and an offset. */
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
         * Sets the capability id.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 16 unsigned bits
         */
        public Encoder id(int value) {
            WireLayout.checkU16("id", value);
            segment.set(NATIVE_U16, offset + ID_OFFSET, (short) value);
            return this;
        }

        /**
         * Sets the capability version.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 16 unsigned bits
         */
        public Encoder version(int value) {
            WireLayout.checkU16("version", value);
            segment.set(NATIVE_U16, offset + VERSION_OFFSET, (short) value);
            return this;
        }

        /**
         * Sets the offset of the next capability (0 ends the chain).
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder next(long value) {
            WireLayout.checkU32("next", value);
            segment.set(NATIVE_U32, offset + NEXT_OFFSET, (int) value);
            return this;
        }
    }
}
