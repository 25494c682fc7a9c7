package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U32;

/**
 * The fixed part of {@code VFIO_USER_DEVICE_FEATURE} (vfio-user.rst; Linux {@code struct vfio_device_feature}):
 * argsz, then the flags with the feature index in bits 0-15 and GET, SET and PROBE in bits 16-18; the
 * feature's data follows.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                          argsz (u32)                          |
 * +---------------------------------------------------------------+
 * |                          flags (u32)                          |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class DeviceFeature {
    /** Offset of {@code argsz}. */
    public static final int ARGSZ_OFFSET = 0;
    /** Offset of {@code flags}. */
    public static final int FLAGS_OFFSET = 4;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 8;
    /** Bits 0-15: the feature index. */
    public static final int FEATURE_MASK = 0xFFFF;
    /** {@code VFIO_DEVICE_FEATURE_GET}. */
    public static final int GET = 1 << 16;
    /** {@code VFIO_DEVICE_FEATURE_SET}. */
    public static final int SET = 1 << 17;
    /** {@code VFIO_DEVICE_FEATURE_PROBE}. */
    public static final int PROBE = 1 << 18;
    /** Every flag bit defined. */
    public static final int KNOWN_FLAGS = FEATURE_MASK | GET | SET | PROBE;
    /** {@code VFIO_DEVICE_FEATURE_MIGRATION}. */
    public static final int MIGRATION = 1;
    /** {@code VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE}. */
    public static final int MIG_DEVICE_STATE = 2;
    /** {@code VFIO_DEVICE_FEATURE_DMA_LOGGING_START}. */
    public static final int DMA_LOGGING_START = 6;
    /** {@code VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP}. */
    public static final int DMA_LOGGING_STOP = 7;
    /** {@code VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT}. */
    public static final int DMA_LOGGING_REPORT = 8;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("argsz", ARGSZ_OFFSET, 4),
            new WireField("flags", FLAGS_OFFSET, 4));

    private DeviceFeature() {
    }

    /** Reads a DeviceFeature in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return argsz: the maximum reply size (command) or the reply size (reply)} */
        public long argsz() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + ARGSZ_OFFSET));
        }

        /** {@return the feature index and the GET/SET/PROBE bits} */
        public long flags() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + FLAGS_OFFSET));
        }

        /** {@return the offset in the segment where the data after the fixed part starts} */
        public long dataOffset() {
            return offset + ENCODED_LENGTH;
        }

    }

    /** Writes a DeviceFeature in place; holds only a segment and an offset. */
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
         * Sets argsz: the maximum reply size (command) or the reply size (reply).
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
         * Sets the feature index and the GET/SET/PROBE bits.
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

        /** {@return the offset in the segment where the data after the fixed part starts} */
        public long dataOffset() {
            return offset + ENCODED_LENGTH;
        }

    }
}
