package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U32;

/**
 * The payload of {@code VFIO_USER_MIG_DATA_READ} and {@code VFIO_USER_MIG_DATA_WRITE} (vfio-user.rst): argsz and a
 * size; MIG_DATA_READ replies and MIG_DATA_WRITE commands carry {@code size} bytes of the device-state
 * stream after the fixed part. A read reply shorter than asked ends the stream.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                          argsz (u32)                          |
 * +---------------------------------------------------------------+
 * |                           size (u32)                          |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class MigData {
    /** Offset of {@code argsz}. */
    public static final int ARGSZ_OFFSET = 0;
    /** Offset of {@code size}. */
    public static final int SIZE_OFFSET = 4;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 8;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("argsz", ARGSZ_OFFSET, 4),
            new WireField("size", SIZE_OFFSET, 4));

    private MigData() {
    }

    /** Reads a MigData in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return argsz} */
        public long argsz() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + ARGSZ_OFFSET));
        }

        /** {@return the number of migration data bytes} */
        public long size() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + SIZE_OFFSET));
        }

        /** {@return the offset in the segment where the data after the fixed part starts} */
        public long dataOffset() {
            return offset + ENCODED_LENGTH;
        }

    }

    /** Writes a MigData in place; holds only a segment and an offset. */
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
         * Sets argsz.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder argsz(long value) {
            WireLayout.checkU32("argsz", value);
            segment.set(NATIVE_U32, offset + ARGSZ_OFFSET, (int) value);
            return this;
        }

        /**
         * Sets the number of migration data bytes.
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

        /** {@return the offset in the segment where the data after the fixed part starts} */
        public long dataOffset() {
            return offset + ENCODED_LENGTH;
        }

    }
}
