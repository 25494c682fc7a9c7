package dev.outproc.vhost.message;

import java.lang.foreign.MemorySegment;

import static dev.outproc.vhost.message.WireLayout.NATIVE_U64;

/**
 * The payload "Single memory region description" of ADD_MEM_REG and REM_MEM_REG (vhost-user.rst): 8 bytes
 * of padding, then one {@link MemoryRegion}.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                         padding (u64)                         |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                 region (MemoryRegion, 32 bytes)               |
 * ~                                                               ~
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class SingleMemRegion {
    /** Offset of the padding (not required to be zero by the specification; written as zero). */
    public static final int PADDING_OFFSET = 0;
    /** Offset of the region. */
    public static final int REGION_OFFSET = 8;
    /** Size of the payload in bytes. */
    public static final int ENCODED_LENGTH = REGION_OFFSET + MemoryRegion.ENCODED_LENGTH;

    private SingleMemRegion() {
    }

    /** Reads the payload in place. */
    public static final class Decoder extends Flyweight<Decoder> {
        private final MemoryRegion.Decoder region = new MemoryRegion.Decoder();

        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /**
         * Points this decoder at a payload.
         *
         * @param segment the buffer
         * @param offset where the payload starts
         * @return this decoder
         */
        @Override
        public Decoder wrap(MemorySegment segment, long offset) {
            super.wrap(segment, offset);
            region.wrap(segment, offset + REGION_OFFSET);
            return this;
        }

        /** {@return the padding word} */
        public long padding() {
            return segment.get(NATIVE_U64, offset + PADDING_OFFSET);
        }

        /** {@return the region (a decoder owned by this one)} */
        public MemoryRegion.Decoder region() {
            return region;
        }
    }

    /** Writes the payload in place. */
    public static final class Encoder extends Flyweight<Encoder> {
        private final MemoryRegion.Encoder region = new MemoryRegion.Encoder();

        /** Creates an unwrapped encoder. */
        public Encoder() {
        }

        /**
         * Points this encoder at a buffer and zeroes the padding.
         *
         * @param segment the buffer
         * @param offset where the payload starts
         * @return this encoder
         */
        @Override
        public Encoder wrap(MemorySegment segment, long offset) {
            super.wrap(segment, offset);
            segment.set(NATIVE_U64, offset + PADDING_OFFSET, 0L);
            region.wrap(segment, offset + REGION_OFFSET);
            return this;
        }

        /** {@return the region (an encoder owned by this one)} */
        public MemoryRegion.Encoder region() {
            return region;
        }
    }
}
