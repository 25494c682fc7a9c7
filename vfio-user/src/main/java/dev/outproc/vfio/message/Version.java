package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U16;

/**
 * The payload of {@code VFIO_USER_VERSION} (vfio-user.rst, "VFIO_USER_VERSION"), the same in the command
 * and in the reply: the protocol version and, optionally, NUL-terminated UTF-8 JSON capabilities after the
 * fixed part ({@link Capabilities} parses them). The JSON's length is the payload size minus
 * {@link #ENCODED_LENGTH}.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |          major (u16)          |          minor (u16)          |
 * +-------------------------------+-------------------------------+
 * </pre>
 */
public final class Version {
    /** Offset of {@code major}. */
    public static final int MAJOR_OFFSET = 0;
    /** Offset of {@code minor}. */
    public static final int MINOR_OFFSET = 2;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 4;
    /** The major version this library speaks (QEMU and libvfio-user send 0). */
    public static final int SUPPORTED_MAJOR = 0;
    /** The highest minor version this library speaks (libvfio-user offers 0.2; QEMU 10.x sends 0.0). */
    public static final int SUPPORTED_MINOR = 1;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("major", MAJOR_OFFSET, 2),
            new WireField("minor", MINOR_OFFSET, 2));

    private Version() {
    }

    /** Reads a Version in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the major version} */
        public int major() {
            return Short.toUnsignedInt(segment.get(NATIVE_U16, offset + MAJOR_OFFSET));
        }

        /** {@return the minor version} */
        public int minor() {
            return Short.toUnsignedInt(segment.get(NATIVE_U16, offset + MINOR_OFFSET));
        }

        /** {@return the offset in the segment where the data after the fixed part starts} */
        public long dataOffset() {
            return offset + ENCODED_LENGTH;
        }

    }

    /** Writes a Version in place; holds only a segment and an offset. */
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
         * Sets the major version.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 16 unsigned bits
         */
        public Encoder major(int value) {
            WireLayout.checkU16("major", value);
            segment.set(NATIVE_U16, offset + MAJOR_OFFSET, (short) value);
            return this;
        }

        /**
         * Sets the minor version.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 16 unsigned bits
         */
        public Encoder minor(int value) {
            WireLayout.checkU16("minor", value);
            segment.set(NATIVE_U16, offset + MINOR_OFFSET, (short) value);
            return this;
        }

        /** {@return the offset in the segment where the data after the fixed part starts} */
        public long dataOffset() {
            return offset + ENCODED_LENGTH;
        }

    }
}
