package dev.outproc.vhost.message;

import java.lang.foreign.MemorySegment;

import static dev.outproc.vhost.message.WireLayout.NATIVE_U64;
import static dev.outproc.vhost.message.WireLayout.NATIVE_U8;

/**
 * The payload "An IOTLB message" (vhost-user.rst; Linux {@code struct vhost_iotlb_msg}). The C structure
 * is 8-byte aligned, so the two byte fields are followed by 6 bytes of tail padding: the payload is
 * 32 bytes (QEMU sends {@code sizeof(struct vhost_iotlb_msg)}).
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                           iova (u64)                          |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                           size (u64)                          |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                          uaddr (u64)                          |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |     perm      |     type      |          padding (6 bytes)    |
 * |                                                               |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class IotlbMsg {
    /** Offset of the I/O virtual address. */
    public static final int IOVA_OFFSET = 0;
    /** Offset of the size of the range. */
    public static final int SIZE_OFFSET = 8;
    /** Offset of the front-end user address. */
    public static final int USER_ADDR_OFFSET = 16;
    /** Offset of the access permissions. */
    public static final int PERM_OFFSET = 24;
    /** Offset of the message type. */
    public static final int TYPE_OFFSET = 25;
    /** Size of the payload in bytes. */
    public static final int ENCODED_LENGTH = 32;
    /** Offset of the tail padding. */
    public static final int PADDING_OFFSET = 26;
    /** Permission: no access. */
    public static final int PERM_NONE = 0;
    /** Permission: read. */
    public static final int PERM_RO = 1;
    /** Permission: write. */
    public static final int PERM_WO = 2;
    /** Permission: read and write. */
    public static final int PERM_RW = 3;
    /** Type: IOTLB miss (back-end to front-end). */
    public static final int TYPE_MISS = 1;
    /** Type: IOTLB update (front-end to back-end). */
    public static final int TYPE_UPDATE = 2;
    /** Type: IOTLB invalidate (front-end to back-end). */
    public static final int TYPE_INVALIDATE = 3;
    /** Type: access failure (back-end to front-end). */
    public static final int TYPE_ACCESS_FAIL = 4;

    private IotlbMsg() {
    }

    /** Reads a IotlbMsg in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the I/O virtual address} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long iova() {
            return segment.get(NATIVE_U64, offset + IOVA_OFFSET);
        }

        /** {@return the size of the range} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long size() {
            return segment.get(NATIVE_U64, offset + SIZE_OFFSET);
        }

        /** {@return the front-end user address} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long userAddr() {
            return segment.get(NATIVE_U64, offset + USER_ADDR_OFFSET);
        }

        /** {@return the access permissions} */
        public int perm() {
            return Byte.toUnsignedInt(segment.get(NATIVE_U8, offset + PERM_OFFSET));
        }

        /** {@return the message type} */
        public int type() {
            return Byte.toUnsignedInt(segment.get(NATIVE_U8, offset + TYPE_OFFSET));
        }

    }

    /** Writes a IotlbMsg in place; holds only a segment and an offset. */
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
         * Sets the I/O virtual address.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder iova(long value) {
            segment.set(NATIVE_U64, offset + IOVA_OFFSET, value);
            return this;
        }

        /**
         * Sets the size of the range.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder size(long value) {
            segment.set(NATIVE_U64, offset + SIZE_OFFSET, value);
            return this;
        }

        /**
         * Sets the front-end user address.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder userAddr(long value) {
            segment.set(NATIVE_U64, offset + USER_ADDR_OFFSET, value);
            return this;
        }

        /**
         * Sets the access permissions.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 8 unsigned bits
         */
        public Encoder perm(int value) {
            WireLayout.checkU8("perm", value);
            segment.set(NATIVE_U8, offset + PERM_OFFSET, (byte) value);
            return this;
        }

        /**
         * Sets the message type.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 8 unsigned bits
         */
        public Encoder type(int value) {
            WireLayout.checkU8("type", value);
            segment.set(NATIVE_U8, offset + TYPE_OFFSET, (byte) value);
            return this;
        }

    }
}
