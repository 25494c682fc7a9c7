package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U16;
import static dev.outproc.vfio.message.WireLayout.NATIVE_U32;

/**
 * The 16-byte header that starts every vfio-user message, command or reply (vfio-user.rst, "Header"): the
 * message id (echoed in the reply), the command, the size of the whole message including this header, the
 * flags (type in bits 0-3: 0 command, 1 reply; bit 4 No_reply; bit 5 Error) and, in a reply with the Error
 * bit, a UNIX errno. An error reply is the header alone.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |          msg_id (u16)         |         command (u16)         |
 * +-------------------------------+-------------------------------+
 * |                           size (u32)                          |
 * +---------------------------------------------------------------+
 * |                          flags (u32)                          |
 * +---------------------------------------------------------------+
 * |                          error (u32)                          |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class VfioUserHeader {
    /** Offset of {@code msg_id}. */
    public static final int MSG_ID_OFFSET = 0;
    /** Offset of {@code command}. */
    public static final int COMMAND_OFFSET = 2;
    /** Offset of {@code size}. */
    public static final int SIZE_OFFSET = 4;
    /** Offset of {@code flags}. */
    public static final int FLAGS_OFFSET = 8;
    /** Offset of {@code error}. */
    public static final int ERROR_OFFSET = 12;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 16;
    /** Bits 0-3: the message type. */
    public static final int TYPE_MASK = 0xF;
    /** Type value of a command. */
    public static final int TYPE_COMMAND = 0x0;
    /** Type value of a reply. */
    public static final int TYPE_REPLY = 0x1;
    /** Bit 4, No_reply: the sender wants no reply. */
    public static final int NO_REPLY = 0x10;
    /** Bit 5, Error: the command failed; {@code error} holds the errno. */
    public static final int ERROR = 0x20;
    /** Every flag bit defined; the others are reserved. */
    public static final int KNOWN_FLAGS = TYPE_MASK | NO_REPLY | ERROR;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("msgId", MSG_ID_OFFSET, 2),
            new WireField("command", COMMAND_OFFSET, 2),
            new WireField("size", SIZE_OFFSET, 4),
            new WireField("flags", FLAGS_OFFSET, 4),
            new WireField("error", ERROR_OFFSET, 4));

    private VfioUserHeader() {
    }

    /** Reads a VfioUserHeader in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the message id} */
        public int msgId() {
            return Short.toUnsignedInt(segment.get(NATIVE_U16, offset + MSG_ID_OFFSET));
        }

        /** {@return the command number} */
        public int command() {
            return Short.toUnsignedInt(segment.get(NATIVE_U16, offset + COMMAND_OFFSET));
        }

        /** {@return the size of the whole message, header included} */
        public long size() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + SIZE_OFFSET));
        }

        /** {@return the flags} */
        public long flags() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + FLAGS_OFFSET));
        }

        /** {@return the errno of an error reply (reserved in a command)} */
        public long error() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + ERROR_OFFSET));
        }

        /** {@return whether the type bits say reply} */
        public boolean isReply() {
            return (flags() & TYPE_MASK) == TYPE_REPLY;
        }

        /** {@return whether the No_reply bit is set} */
        public boolean noReply() {
            return (flags() & NO_REPLY) != 0;
        }

        /** {@return whether the Error bit is set} */
        public boolean isError() {
            return (flags() & ERROR) != 0;
        }

    }

    /** Writes a VfioUserHeader in place; holds only a segment and an offset. */
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
         * Sets the message id.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 16 unsigned bits
         */
        public Encoder msgId(int value) {
            WireLayout.checkU16("msgId", value);
            segment.set(NATIVE_U16, offset + MSG_ID_OFFSET, (short) value);
            return this;
        }

        /**
         * Sets the command number.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 16 unsigned bits
         */
        public Encoder command(int value) {
            WireLayout.checkU16("command", value);
            segment.set(NATIVE_U16, offset + COMMAND_OFFSET, (short) value);
            return this;
        }

        /**
         * Sets the size of the whole message, header included.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder size(long value) {
            WireLayout.checkU32("size", value);
            segment.set(NATIVE_U32, offset + SIZE_OFFSET, (int) value);
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
         * Sets the errno of an error reply (reserved in a command).
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder error(long value) {
            WireLayout.checkU32("error", value);
            segment.set(NATIVE_U32, offset + ERROR_OFFSET, (int) value);
            return this;
        }

        /**
         * Writes a command header.
         *
         * @param msgId the message id
         * @param command the command
         * @param payloadBytes the payload size (the header is added)
         * @param noReply whether to set No_reply
         * @return this encoder
         */
        public Encoder command(int msgId, VfioUserCommand command, long payloadBytes, boolean noReply) {
            return msgId(msgId).command(command.code()).size(ENCODED_LENGTH + payloadBytes)
                    .flags(TYPE_COMMAND | (noReply ? NO_REPLY : 0)).error(0);
        }

        /**
         * Writes a reply header.
         *
         * @param msgId the id of the command answered
         * @param command the command answered
         * @param payloadBytes the payload size (the header is added)
         * @return this encoder
         */
        public Encoder reply(int msgId, int command, long payloadBytes) {
            return msgId(msgId).command(command).size(ENCODED_LENGTH + payloadBytes).flags(TYPE_REPLY).error(0);
        }

        /**
         * Writes an error reply header: the header alone, Error set, the errno given.
         *
         * @param msgId the id of the command answered
         * @param command the command answered
         * @param errno the UNIX errno
         * @return this encoder
         */
        public Encoder errorReply(int msgId, int command, int errno) {
            return msgId(msgId).command(command).size(ENCODED_LENGTH).flags(TYPE_REPLY | ERROR).error(errno);
        }

    }
}
