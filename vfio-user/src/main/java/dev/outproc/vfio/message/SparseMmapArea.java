package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U64;

/**
 * One area of a sparse-mmap capability (Linux {@code struct vfio_region_sparse_mmap_area}): a part of the region
 * the client may mmap, relative to the region's mmap offset.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                          offset (u64)                         |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                           size (u64)                          |
 * |                                                               |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class SparseMmapArea {
    /** Offset of {@code offset}. */
    public static final int OFFSET_OFFSET = 0;
    /** Offset of {@code size}. */
    public static final int SIZE_OFFSET = 8;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 16;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("offset", OFFSET_OFFSET, 8),
            new WireField("size", SIZE_OFFSET, 8));

    private SparseMmapArea() {
    }

    /** Reads a SparseMmapArea in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the offset of the area in the region} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long offset() {
            return segment.get(NATIVE_U64, offset + OFFSET_OFFSET);
        }

        /** {@return the size of the area} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long size() {
            return segment.get(NATIVE_U64, offset + SIZE_OFFSET);
        }
    }

    /** Writes a SparseMmapArea in place; holds only a segment and an offset. */
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
         * Sets the offset of the area in the region.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder offset(long value) {
            segment.set(NATIVE_U64, offset + OFFSET_OFFSET, value);
            return this;
        }

        /**
         * Sets the size of the area.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder size(long value) {
            segment.set(NATIVE_U64, offset + SIZE_OFFSET, value);
            return this;
        }
    }
}
