package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U32;

/**
 * The payload of {@code VFIO_USER_DEVICE_GET_INFO} (vfio-user.rst; Linux {@code struct vfio_device_info}). In the
 * command only {@code argsz} (the largest reply payload accepted) is set; the reply carries the device's
 * flags and its counts of regions and IRQ types.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                          argsz (u32)                          |
 * +---------------------------------------------------------------+
 * |                          flags (u32)                          |
 * +---------------------------------------------------------------+
 * |                       num_regions (u32)                       |
 * +---------------------------------------------------------------+
 * |                         num_irqs (u32)                        |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class DeviceInfo {
    /** Offset of {@code argsz}. */
    public static final int ARGSZ_OFFSET = 0;
    /** Offset of {@code flags}. */
    public static final int FLAGS_OFFSET = 4;
    /** Offset of {@code num_regions}. */
    public static final int NUM_REGIONS_OFFSET = 8;
    /** Offset of {@code num_irqs}. */
    public static final int NUM_IRQS_OFFSET = 12;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 16;
    /** {@code VFIO_DEVICE_FLAGS_RESET}: the device supports {@code VFIO_USER_DEVICE_RESET}. */
    public static final int FLAG_RESET = 1;
    /** {@code VFIO_DEVICE_FLAGS_PCI}: the device is a PCI device. */
    public static final int FLAG_PCI = 2;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("argsz", ARGSZ_OFFSET, 4),
            new WireField("flags", FLAGS_OFFSET, 4),
            new WireField("numRegions", NUM_REGIONS_OFFSET, 4),
            new WireField("numIrqs", NUM_IRQS_OFFSET, 4));

    private DeviceInfo() {
    }

    /** Reads a DeviceInfo in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return argsz: the maximum reply size (command) or the full reply size (reply)} */
        public long argsz() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + ARGSZ_OFFSET));
        }

        /** {@return the device flags} */
        public long flags() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + FLAGS_OFFSET));
        }

        /** {@return the number of regions} */
        public long numRegions() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + NUM_REGIONS_OFFSET));
        }

        /** {@return the number of IRQ types} */
        public long numIrqs() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + NUM_IRQS_OFFSET));
        }
    }

    /** Writes a DeviceInfo in place; holds only a segment and an offset. */
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
         * Sets argsz: the maximum reply size (command) or the full reply size (reply).
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
         * Sets the device flags.
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
         * Sets the number of regions.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder numRegions(long value) {
            WireLayout.checkU32("numRegions", value);
            segment.set(NATIVE_U32, offset + NUM_REGIONS_OFFSET, (int) value);
            return this;
        }

        /**
         * Sets the number of IRQ types.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder numIrqs(long value) {
            WireLayout.checkU32("numIrqs", value);
            segment.set(NATIVE_U32, offset + NUM_IRQS_OFFSET, (int) value);
            return this;
        }
    }
}
