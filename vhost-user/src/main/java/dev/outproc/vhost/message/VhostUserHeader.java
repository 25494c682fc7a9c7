package dev.outproc.vhost.message;

import java.lang.foreign.MemorySegment;

import static dev.outproc.vhost.message.WireLayout.NATIVE_U32;

/**
 * The 12-byte header that starts every vhost-user message (vhost-user.rst, "Header"): the request
 * number, the flags and the size of the payload that follows.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                         request (u32)                         |
 * +-------------------------------------------------------+-+-+---+
 * |                    reserved, must be 0                |N|R|ver|  flags (u32)
 * +-------------------------------------------------------+-+-+---+
 * |                     size of payload (u32)                     |
 * +---------------------------------------------------------------+
 *   ver = bits 0-1, version 1; R = bit 2, REPLY; N = bit 3, NEED_REPLY
 * </pre>
 */
public final class VhostUserHeader {
    /** Offset of the request number. */
    public static final int REQUEST_OFFSET = 0;
    /** Offset of the flags. */
    public static final int FLAGS_OFFSET = 4;
    /** Offset of the payload size. */
    public static final int SIZE_OFFSET = 8;
    /** Size of the header in bytes. */
    public static final int ENCODED_LENGTH = 12;

    /** The protocol version in flag bits 0–1 ("currently 0x01"). */
    public static final int VERSION = 0x1;
    /** Mask of the version bits. */
    public static final int VERSION_MASK = 0x3;
    /** Bit 2: this message is a reply. */
    public static final int REPLY_FLAG = 0x4;
    /** Bit 3: the sender asks for a REPLY_ACK. */
    public static final int NEED_REPLY_FLAG = 0x8;
    /** Every flag bit the specification defines; the others are reserved and must be 0. */
    public static final int KNOWN_FLAGS = VERSION_MASK | REPLY_FLAG | NEED_REPLY_FLAG;

    private VhostUserHeader() {
    }

    /** Reads a header in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the offset of the header in the segment} */
        public long offset() {
            return offset;
        }

        /** {@return the request number (unsigned)} */
        public long request() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + REQUEST_OFFSET));
        }

        /** {@return the flags (unsigned)} */
        public long flags() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + FLAGS_OFFSET));
        }

        /** {@return the payload size (unsigned)} */
        public long size() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + SIZE_OFFSET));
        }

        /** {@return the version bits} */
        public int version() {
            return (int) (flags() & VERSION_MASK);
        }

        /** {@return whether the REPLY flag is set} */
        public boolean isReply() {
            return (flags() & REPLY_FLAG) != 0;
        }

        /** {@return whether the NEED_REPLY flag is set} */
        public boolean needReply() {
            return (flags() & NEED_REPLY_FLAG) != 0;
        }
    }

    /** Writes a header in place; holds only a segment and an offset. */
    public static final class Encoder extends Flyweight<Encoder> {
        /** Creates an unwrapped encoder. */
        public Encoder() {
        }

        /** {@return the offset of the header in the segment} */
        public long offset() {
            return offset;
        }

        /**
         * Sets the request number.
         *
         * @param value the request number
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder request(long value) {
            WireLayout.checkU32("request", value);
            segment.set(NATIVE_U32, offset + REQUEST_OFFSET, (int) value);
            return this;
        }

        /**
         * Sets the flags as given (no version is added).
         *
         * @param value the flags
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder flags(long value) {
            WireLayout.checkU32("flags", value);
            segment.set(NATIVE_U32, offset + FLAGS_OFFSET, (int) value);
            return this;
        }

        /**
         * Sets the payload size.
         *
         * @param value the size
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder size(long value) {
            WireLayout.checkU32("size", value);
            segment.set(NATIVE_U32, offset + SIZE_OFFSET, (int) value);
            return this;
        }

        /**
         * Writes a request header: version 1, NEED_REPLY as asked.
         *
         * @param request the request
         * @param needReply whether to ask for a REPLY_ACK
         * @param payloadSize the payload size
         * @return this encoder
         */
        public Encoder request(VhostUserRequest request, boolean needReply, int payloadSize) {
            return request(request.code()).flags(VERSION | (needReply ? NEED_REPLY_FLAG : 0)).size(payloadSize);
        }

        /**
         * Writes a reply header: version 1 and REPLY.
         *
         * @param request the request answered
         * @param payloadSize the payload size
         * @return this encoder
         */
        public Encoder reply(VhostUserRequest request, int payloadSize) {
            return request(request.code()).flags(VERSION | REPLY_FLAG).size(payloadSize);
        }
    }
}
