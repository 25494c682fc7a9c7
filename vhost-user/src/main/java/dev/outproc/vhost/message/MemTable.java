package dev.outproc.vhost.message;

import java.lang.foreign.MemorySegment;

import static dev.outproc.vhost.message.WireLayout.NATIVE_U32;

/**
 * The payload "Multiple memory regions description" of SET_MEM_TABLE (vhost-user.rst). The table has
 * room for 8 regions ({@code VHOST_MEMORY_BASELINE_NREGIONS}), but senders transmit only the regions in
 * use: the payload is exactly {@code 8 + 32 * nregions} bytes, with one fd per region in the same order.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                        nregions (u32)                         |
 * +---------------------------------------------------------------+
 * |                         padding (u32)                         |
 * +---------------------------------------------------------------+
 * |              region 0 (MemoryRegion, 32 bytes)                |
 * ~                              ...                              ~
 * |         region nregions-1 (MemoryRegion, 32 bytes)            |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class MemTable {
    /** Offset of the region count. */
    public static final int NREGIONS_OFFSET = 0;
    /** Offset of the padding (not required to be zero by the specification; written as zero). */
    public static final int PADDING_OFFSET = 4;
    /** Offset of region 0. */
    public static final int REGIONS_OFFSET = 8;
    /** The most regions a table holds. */
    public static final int MAX_REGIONS = 8;

    private MemTable() {
    }

    /**
     * {@return the payload size of a table with {@code nregions} regions}
     *
     * @param nregions the region count
     */
    public static int encodedLength(int nregions) {
        return REGIONS_OFFSET + nregions * MemoryRegion.ENCODED_LENGTH;
    }

    /**
     * {@return the offset of region {@code index} relative to the table}
     *
     * @param index the region index
     */
    public static int regionOffset(int index) {
        return REGIONS_OFFSET + index * MemoryRegion.ENCODED_LENGTH;
    }

    /** Reads a memory table in place. */
    public static final class Decoder extends Flyweight<Decoder> {
        private final MemoryRegion.Decoder region = new MemoryRegion.Decoder();

        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the number of regions (unsigned, as sent)} */
        public long nregions() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + NREGIONS_OFFSET));
        }

        /** {@return the padding word} */
        public long padding() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + PADDING_OFFSET));
        }

        /**
         * Returns a region. The returned decoder is reused by the next call.
         *
         * @param index the region index, below {@link #nregions()}
         * @return a decoder wrapped at that region
         * @throws IndexOutOfBoundsException when the index is outside the table as sent
         */
        public MemoryRegion.Decoder region(int index) {
            if (index < 0 || index >= nregions() || index >= MAX_REGIONS) {
                throw new IndexOutOfBoundsException("region index " + index + " of " + nregions());
            }
            return region.wrap(segment, offset + regionOffset(index));
        }
    }

    /** Writes a memory table in place. */
    public static final class Encoder extends Flyweight<Encoder> {
        private final MemoryRegion.Encoder region = new MemoryRegion.Encoder();

        /** Creates an unwrapped encoder. */
        public Encoder() {
        }

        /**
         * Sets the region count and zeroes the padding.
         *
         * @param nregions 0 to {@link #MAX_REGIONS}
         * @return this encoder
         * @throws IllegalArgumentException when the count is out of range
         */
        public Encoder nregions(int nregions) {
            if (nregions < 0 || nregions > MAX_REGIONS) {
                throw new IllegalArgumentException("nregions must be 0.." + MAX_REGIONS + ", nregions=" + nregions);
            }
            segment.set(NATIVE_U32, offset + NREGIONS_OFFSET, nregions);
            segment.set(NATIVE_U32, offset + PADDING_OFFSET, 0);
            return this;
        }

        /**
         * Returns an encoder for a region; it is reused by the next call.
         *
         * @param index 0 to {@link #MAX_REGIONS} - 1
         * @return an encoder wrapped at that region
         */
        public MemoryRegion.Encoder region(int index) {
            if (index < 0 || index >= MAX_REGIONS) {
                throw new IndexOutOfBoundsException("region index " + index + " of " + MAX_REGIONS);
            }
            return region.wrap(segment, offset + regionOffset(index));
        }
    }
}
