package dev.outproc.vhost.message;

import java.lang.foreign.MemorySegment;

import static dev.outproc.vhost.message.WireLayout.NATIVE_U32;

/**
 * The payload "A vring state description" (vhost-user.rst): a ring index and a number. The number is
 * the queue size (SET_VRING_NUM), 0/1 (SET_VRING_ENABLE, SET_VRING_ENDIAN), reserved zero (GET_VRING_BASE
 * request, VRING_KICK, back-end VRING_CALL/VRING_ERR), or the "vring descriptor index/indices"
 * (SET_VRING_BASE, GET_VRING_BASE reply; see {@link VringDescriptorIndices}).
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                          index (u32)                          |
 * +---------------------------------------------------------------+
 * |                           num (u32)                           |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class VringState {
    /** Offset of the vring index. */
    public static final int INDEX_OFFSET = 0;
    /** Offset of the number. */
    public static final int NUM_OFFSET = 4;
    /** Size of the payload in bytes. */
    public static final int ENCODED_LENGTH = 8;

    private VringState() {
    }

    /** Reads a VringState in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the vring index} */
        public long index() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + INDEX_OFFSET));
        }

        /** {@return the number} */
        public long num() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + NUM_OFFSET));
        }

    }

    /** Writes a VringState in place; holds only a segment and an offset. */
    public static final class Encoder extends Flyweight<Encoder> {
        /** Creates an unwrapped encoder. */
        public Encoder() {
        }

        /**
         * Zeroes the whole payload (padding and reserved fields included).
         *
         * @return this encoder
         */
        public Encoder clear() {
            segment.asSlice(offset, ENCODED_LENGTH).fill((byte) 0);
            return this;
        }

        /**
         * Sets the vring index.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder index(long value) {
            WireLayout.checkU32("index", value);
            segment.set(NATIVE_U32, offset + INDEX_OFFSET, (int) value);
            return this;
        }

        /**
         * Sets the number.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder num(long value) {
            WireLayout.checkU32("num", value);
            segment.set(NATIVE_U32, offset + NUM_OFFSET, (int) value);
            return this;
        }

    }
}
