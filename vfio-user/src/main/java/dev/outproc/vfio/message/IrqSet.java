package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U32;

/**
 * The payload of {@code VFIO_USER_DEVICE_SET_IRQS} (vfio-user.rst; Linux {@code struct vfio_irq_set}): one data
 * flag (NONE, BOOL with {@code count} bytes after the fixed part, or EVENTFD with up to {@code count} fds in
 * the message) and one action flag (MASK, UNMASK or TRIGGER). The reply has no payload. A client splits an
 * eventfd batch larger than the server's {@code max_msg_fds} into several messages.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                          argsz (u32)                          |
 * +---------------------------------------------------------------+
 * |                          flags (u32)                          |
 * +---------------------------------------------------------------+
 * |                          index (u32)                          |
 * +---------------------------------------------------------------+
 * |                          start (u32)                          |
 * +---------------------------------------------------------------+
 * |                          count (u32)                          |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class IrqSet {
    /** Offset of {@code argsz}. */
    public static final int ARGSZ_OFFSET = 0;
    /** Offset of {@code flags}. */
    public static final int FLAGS_OFFSET = 4;
    /** Offset of {@code index}. */
    public static final int INDEX_OFFSET = 8;
    /** Offset of {@code start}. */
    public static final int START_OFFSET = 12;
    /** Offset of {@code count}. */
    public static final int COUNT_OFFSET = 16;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 20;
    /** {@code VFIO_IRQ_SET_DATA_NONE}. */
    public static final int DATA_NONE = 1;
    /** {@code VFIO_IRQ_SET_DATA_BOOL}. */
    public static final int DATA_BOOL = 2;
    /** {@code VFIO_IRQ_SET_DATA_EVENTFD}. */
    public static final int DATA_EVENTFD = 4;
    /** {@code VFIO_IRQ_SET_ACTION_MASK}. */
    public static final int ACTION_MASK = 8;
    /** {@code VFIO_IRQ_SET_ACTION_UNMASK}. */
    public static final int ACTION_UNMASK = 16;
    /** {@code VFIO_IRQ_SET_ACTION_TRIGGER}. */
    public static final int ACTION_TRIGGER = 32;
    /** The data-type bits. */
    public static final int DATA_MASK = DATA_NONE | DATA_BOOL | DATA_EVENTFD;
    /** The action bits. */
    public static final int ACTION_MASK_BITS = ACTION_MASK | ACTION_UNMASK | ACTION_TRIGGER;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("argsz", ARGSZ_OFFSET, 4),
            new WireField("flags", FLAGS_OFFSET, 4),
            new WireField("index", INDEX_OFFSET, 4),
            new WireField("start", START_OFFSET, 4),
            new WireField("count", COUNT_OFFSET, 4));

    private IrqSet() {
    }

    /** Reads a IrqSet in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return argsz: the size of this payload including data} */
        public long argsz() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + ARGSZ_OFFSET));
        }

        /** {@return the data and action flags} */
        public long flags() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + FLAGS_OFFSET));
        }

        /** {@return the IRQ index} */
        public long index() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + INDEX_OFFSET));
        }

        /** {@return the first sub-index} */
        public long start() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + START_OFFSET));
        }

        /** {@return the number of sub-indexes} */
        public long count() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + COUNT_OFFSET));
        }

        /** {@return the offset in the segment where the data after the fixed part starts} */
        public long dataOffset() {
            return offset + ENCODED_LENGTH;
        }

    }

    /** Writes a IrqSet in place; holds only a segment and an offset. */
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
         * Sets argsz: the size of this payload including data.
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
         * Sets the data and action flags.
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
         * Sets the IRQ index.
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
         * Sets the first sub-index.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder start(long value) {
            WireLayout.checkU32("start", value);
            segment.set(NATIVE_U32, offset + START_OFFSET, (int) value);
            return this;
        }

        /**
         * Sets the number of sub-indexes.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder count(long value) {
            WireLayout.checkU32("count", value);
            segment.set(NATIVE_U32, offset + COUNT_OFFSET, (int) value);
            return this;
        }

        /** {@return the offset in the segment where the data after the fixed part starts} */
        public long dataOffset() {
            return offset + ENCODED_LENGTH;
        }

    }
}
