package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U32;

/**
 * The body of {@code VFIO_REGION_INFO_CAP_SPARSE_MMAP} after its {@link InfoCapHeader} (Linux
 * {@code struct vfio_region_info_cap_sparse_mmap}): {@code nr_areas} {@link SparseMmapArea}s follow. Version 1.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                         nr_areas (u32)                        |
 * +---------------------------------------------------------------+
 * |                         reserved (u32)                        |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class SparseMmapCap {
    /** Offset of {@code nr_areas}. */
    public static final int NR_AREAS_OFFSET = 0;
    /** Offset of {@code reserved}. */
    public static final int RESERVED_OFFSET = 4;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 8;
    /** The capability version. */
    public static final int VERSION = 1;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("nrAreas", NR_AREAS_OFFSET, 4),
            new WireField("reserved", RESERVED_OFFSET, 4));

    private SparseMmapCap() {
    }

    /** Reads a SparseMmapCap in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the number of areas that follow} */
        public long nrAreas() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + NR_AREAS_OFFSET));
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

    /** Writes a SparseMmapCap in place; holds only a segment and an offset. */
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
         * Sets the number of areas that follow.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder nrAreas(long value) {
            WireLayout.checkU32("nrAreas", value);
            segment.set(NATIVE_U32, offset + NR_AREAS_OFFSET, (int) value);
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
