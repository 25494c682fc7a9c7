package dev.outproc.vhost.message;

import java.lang.foreign.MemorySegment;

import static dev.outproc.vhost.message.WireLayout.NATIVE_U32;
import static dev.outproc.vhost.message.WireLayout.NATIVE_U64;

/**
 * The payload "A vring address description" (vhost-user.rst; Linux {@code struct vhost_vring_addr}). Ring
 * addresses are front-end user addresses, IOVAs when ACCESS_PLATFORM is negotiated, or guest-physical
 * addresses when GPA_ADDRESSES is negotiated; {@code logGuestAddr} is where used-ring writes are logged
 * when {@link #F_LOG} is set. The specification's older table shows a "size" column that the structure
 * never had.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                          index (u32)                          |
 * +---------------------------------------------------------------+
 * |                          flags (u32)                          |
 * +---------------------------------------------------------------+
 * |                      desc_user_addr (u64)                     |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                      used_user_addr (u64)                     |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                     avail_user_addr (u64)                     |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                      log_guest_addr (u64)                     |
 * |                                                               |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class VringAddr {
    /** Offset of the vring index. */
    public static final int INDEX_OFFSET = 0;
    /** Offset of the flags. */
    public static final int FLAGS_OFFSET = 4;
    /** Offset of the descriptor table address. */
    public static final int DESC_USER_ADDR_OFFSET = 8;
    /** Offset of the used ring address. */
    public static final int USED_USER_ADDR_OFFSET = 16;
    /** Offset of the available ring address. */
    public static final int AVAIL_USER_ADDR_OFFSET = 24;
    /** Offset of the guest address at which used-ring writes are logged. */
    public static final int LOG_GUEST_ADDR_OFFSET = 32;
    /** Size of the payload in bytes. */
    public static final int ENCODED_LENGTH = 40;
    /** Flag bit 0, {@code VHOST_VRING_F_LOG}: log writes to the used ring. */
    public static final int F_LOG = 1;
    /** Every flag defined; Linux vhost rejects others with EOPNOTSUPP. */
    public static final int KNOWN_FLAGS = F_LOG;

    private VringAddr() {
    }

    /** Reads a VringAddr in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the vring index} */
        public long index() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + INDEX_OFFSET));
        }

        /** {@return the flags} */
        public long flags() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + FLAGS_OFFSET));
        }

        /** {@return the descriptor table address} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long descUserAddr() {
            return segment.get(NATIVE_U64, offset + DESC_USER_ADDR_OFFSET);
        }

        /** {@return the used ring address} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long usedUserAddr() {
            return segment.get(NATIVE_U64, offset + USED_USER_ADDR_OFFSET);
        }

        /** {@return the available ring address} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long availUserAddr() {
            return segment.get(NATIVE_U64, offset + AVAIL_USER_ADDR_OFFSET);
        }

        /** {@return the guest address at which used-ring writes are logged} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long logGuestAddr() {
            return segment.get(NATIVE_U64, offset + LOG_GUEST_ADDR_OFFSET);
        }

    }

    /** Writes a VringAddr in place; holds only a segment and an offset. */
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
         * Sets the flags.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder flags(long value) {
            WireLayout.checkU32("flags", value);
            segment.set(NATIVE_U32, offset + FLAGS_OFFSET, (int) value);
            return this;
        }

        /**
         * Sets the descriptor table address.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder descUserAddr(long value) {
            segment.set(NATIVE_U64, offset + DESC_USER_ADDR_OFFSET, value);
            return this;
        }

        /**
         * Sets the used ring address.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder usedUserAddr(long value) {
            segment.set(NATIVE_U64, offset + USED_USER_ADDR_OFFSET, value);
            return this;
        }

        /**
         * Sets the available ring address.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder availUserAddr(long value) {
            segment.set(NATIVE_U64, offset + AVAIL_USER_ADDR_OFFSET, value);
            return this;
        }

        /**
         * Sets the guest address at which used-ring writes are logged.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder logGuestAddr(long value) {
            segment.set(NATIVE_U64, offset + LOG_GUEST_ADDR_OFFSET, value);
            return this;
        }

    }
}
