package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U32;

/**
 * The data of {@code VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE} (vfio-user.rst; Linux
 * {@code struct vfio_device_feature_mig_state}): the state to move to (SET) or the current state (GET).
 * {@code data_fd} is unused in vfio-user: the data moves through {@code VFIO_USER_MIG_DATA_READ/WRITE}.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                       device_state (u32)                      |
 * +---------------------------------------------------------------+
 * |                         data_fd (u32)                         |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class MigDeviceState {
    /** Offset of {@code device_state}. */
    public static final int DEVICE_STATE_OFFSET = 0;
    /** Offset of {@code data_fd}. */
    public static final int DATA_FD_OFFSET = 4;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 8;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("deviceState", DEVICE_STATE_OFFSET, 4),
            new WireField("dataFd", DATA_FD_OFFSET, 4));

    private MigDeviceState() {
    }

    /** Reads a MigDeviceState in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the device state ({@code enum vfio_device_mig_state})} */
        public long deviceState() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + DEVICE_STATE_OFFSET));
        }

        /** {@return data_fd, unused in vfio-user} */
        public long dataFd() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + DATA_FD_OFFSET));
        }
    }

    /** Writes a MigDeviceState in place; holds only a segment and an offset. */
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
         * Sets the device state ({@code enum vfio_device_mig_state}).
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder deviceState(long value) {
            WireLayout.checkU32("deviceState", value);
            segment.set(NATIVE_U32, offset + DEVICE_STATE_OFFSET, (int) value);
            return this;
        }

        /**
         * Sets data_fd, unused in vfio-user.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder dataFd(long value) {
            WireLayout.checkU32("dataFd", value);
            segment.set(NATIVE_U32, offset + DATA_FD_OFFSET, (int) value);
            return this;
        }
    }
}
