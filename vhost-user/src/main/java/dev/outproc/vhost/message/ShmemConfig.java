package dev.outproc.vhost.message;

import java.lang.foreign.MemorySegment;

import static dev.outproc.vhost.message.WireLayout.NATIVE_U32;
import static dev.outproc.vhost.message.WireLayout.NATIVE_U64;

/**
 * The reply payload "VIRTIO Shared Memory Region configuration" ({@code VhostUserShMemConfig}) of
 * GET_SHMEM_CONFIG (vhost-user.rst): a region count and 256 region sizes indexed by shmid. A size may be
 * 0 for an unused id; sizes are multiples of the page size (a semantic rule, not checked here).
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                        nregions (u32)                         |
 * +---------------------------------------------------------------+
 * |                         padding (u32)                         |
 * +---------------------------------------------------------------+
 * |                      memory_sizes[0] (u64)                    |
 * ~                              ...                              ~
 * |                     memory_sizes[255] (u64)                   |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class ShmemConfig {
    /** Offset of the region count. */
    public static final int NREGIONS_OFFSET = 0;
    /** Offset of the padding. */
    public static final int PADDING_OFFSET = 4;
    /** Offset of {@code memory_sizes[0]}. */
    public static final int MEMORY_SIZES_OFFSET = 8;
    /** Number of entries in {@code memory_sizes}. */
    public static final int MAX_REGIONS = 256;
    /** Size of the payload in bytes. */
    public static final int ENCODED_LENGTH = MEMORY_SIZES_OFFSET + MAX_REGIONS * 8;

    private ShmemConfig() {
    }

    /** Reads the payload in place. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the region count} */
        public long nregions() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + NREGIONS_OFFSET));
        }

        /** {@return the padding word} */
        public long padding() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + PADDING_OFFSET));
        }

        /**
         * {@return the size of shared memory region {@code shmid}} (unsigned)
         *
         * @param shmid 0–255
         */
        public long memorySize(int shmid) {
            if (shmid < 0 || shmid >= MAX_REGIONS) {
                throw new IndexOutOfBoundsException("shmid " + shmid + " of " + MAX_REGIONS);
            }
            return segment.get(NATIVE_U64, offset + MEMORY_SIZES_OFFSET + 8L * shmid);
        }
    }

    /** Writes the payload in place. */
    public static final class Encoder extends Flyweight<Encoder> {
        /** Creates an unwrapped encoder. */
        public Encoder() {
        }

        /**
         * Zeroes the whole payload.
         *
         * @return this encoder
         */
        public Encoder clear() {
            for (int i = 0; i < ENCODED_LENGTH; i += 8) {
                segment.set(NATIVE_U64, offset + i, 0L);
            }
            return this;
        }

        /**
         * Sets the region count and zeroes the padding.
         *
         * @param nregions 0–256
         * @return this encoder
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
         * Sets the size of a region.
         *
         * @param shmid 0–255
         * @param size the size in bytes
         * @return this encoder
         */
        public Encoder memorySize(int shmid, long size) {
            if (shmid < 0 || shmid >= MAX_REGIONS) {
                throw new IndexOutOfBoundsException("shmid " + shmid + " of " + MAX_REGIONS);
            }
            segment.set(NATIVE_U64, offset + MEMORY_SIZES_OFFSET + 8L * shmid, size);
            return this;
        }
    }
}
