package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U64;

/**
 * One IOVA range of a DMA logging request (vfio-user.rst, {@code vfio_user_device_feature_dma_logging_range}).
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                           iova (u64)                          |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                          length (u64)                         |
 * |                                                               |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class DmaLoggingRange {
    /** Offset of {@code iova}. */
    public static final int IOVA_OFFSET = 0;
    /** Offset of {@code length}. */
    public static final int LENGTH_OFFSET = 8;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 16;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("iova", IOVA_OFFSET, 8),
            new WireField("length", LENGTH_OFFSET, 8));

    private DmaLoggingRange() {
    }

    /** Reads a DmaLoggingRange in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the base IOVA} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long iova() {
            return segment.get(NATIVE_U64, offset + IOVA_OFFSET);
        }

        /** {@return the length of the range} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long length() {
            return segment.get(NATIVE_U64, offset + LENGTH_OFFSET);
        }
    }

    /** Writes a DmaLoggingRange in place; holds only a segment and an offset. */
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
         * Sets the base IOVA.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder iova(long value) {
            segment.set(NATIVE_U64, offset + IOVA_OFFSET, value);
            return this;
        }

        /**
         * Sets the length of the range.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder length(long value) {
            segment.set(NATIVE_U64, offset + LENGTH_OFFSET, value);
            return this;
        }
    }
}
