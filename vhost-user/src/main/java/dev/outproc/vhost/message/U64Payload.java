package dev.outproc.vhost.message;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static dev.outproc.vhost.message.WireLayout.NATIVE_U64;

/**
 * The payload "A single 64-bit integer" (vhost-user.rst): features, protocol features, queue counts,
 * status values, REPLY_ACK results, and the ring index word of SET_VRING_KICK/CALL/ERR
 * (see {@link VringFdIndex}).
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                          value (u64)                          |
 * |                                                               |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class U64Payload {
    /** Offset of the 64-bit value. */
    public static final int VALUE_OFFSET = 0;
    /** Size of the payload in bytes. */
    public static final int ENCODED_LENGTH = 8;
    /** Bytes of the MAC address SEND_RARP carries at the start of the payload. */
    public static final int MAC_BYTES = 6;

    private U64Payload() {
    }

    /** Reads a U64Payload in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the 64-bit value} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long value() {
            return segment.get(NATIVE_U64, offset + VALUE_OFFSET);
        }

        /**
         * Copies the first {@code count} bytes of the payload in wire order: SEND_RARP carries the guest's
         * MAC address in the first {@value U64Payload#MAC_BYTES} bytes of its u64, not as a number.
         *
         * @param destination where the bytes go, from index 0
         * @param count 0 to {@value U64Payload#ENCODED_LENGTH}
         * @throws IndexOutOfBoundsException when {@code count} is out of range or does not fit
         */
        public void copyBytes(byte[] destination, int count) {
            if (count < 0 || count > ENCODED_LENGTH) {
                throw new IndexOutOfBoundsException("count must be 0.." + ENCODED_LENGTH + ", count=" + count);
            }
            MemorySegment.copy(segment, ValueLayout.JAVA_BYTE, offset + VALUE_OFFSET, destination, 0, count);
        }
    }

    /** Writes a U64Payload in place; holds only a segment and an offset. */
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
         * Sets the 64-bit value.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder value(long value) {
            segment.set(NATIVE_U64, offset + VALUE_OFFSET, value);
            return this;
        }

    }
}
