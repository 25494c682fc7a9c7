package dev.outproc.vhost.message;

import java.lang.foreign.MemorySegment;

import static dev.outproc.vhost.message.WireLayout.NATIVE_U32;

/**
 * The payload "Device state transfer parameters" of SET_DEVICE_STATE_FD (vhost-user.rst).
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                        direction (u32)                        |
 * +---------------------------------------------------------------+
 * |                          phase (u32)                          |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class DeviceStateTransfer {
    /** Offset of the transfer direction. */
    public static final int DIRECTION_OFFSET = 0;
    /** Offset of the migration phase. */
    public static final int PHASE_OFFSET = 4;
    /** Size of the payload in bytes. */
    public static final int ENCODED_LENGTH = 8;
    /** Direction 0: save, the back-end writes its state into the fd. */
    public static final int DIRECTION_SAVE = 0;
    /** Direction 1: load, the back-end reads its state from the fd. */
    public static final int DIRECTION_LOAD = 1;
    /** Phase 0: stopped, the device is suspended. */
    public static final int PHASE_STOPPED = 0;

    private DeviceStateTransfer() {
    }

    /** Reads a DeviceStateTransfer in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the transfer direction} */
        public long direction() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + DIRECTION_OFFSET));
        }

        /** {@return the migration phase} */
        public long phase() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + PHASE_OFFSET));
        }

    }

    /** Writes a DeviceStateTransfer in place; holds only a segment and an offset. */
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
         * Sets the transfer direction.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder direction(long value) {
            WireLayout.checkU32("direction", value);
            segment.set(NATIVE_U32, offset + DIRECTION_OFFSET, (int) value);
            return this;
        }

        /**
         * Sets the migration phase.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder phase(long value) {
            WireLayout.checkU32("phase", value);
            segment.set(NATIVE_U32, offset + PHASE_OFFSET, (int) value);
            return this;
        }

    }
}
