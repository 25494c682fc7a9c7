package dev.outproc.vhost.message;

import java.lang.foreign.MemorySegment;

import static dev.outproc.vhost.message.WireLayout.NATIVE_U16;
import static dev.outproc.vhost.message.WireLayout.NATIVE_U64;

/**
 * The payload "Inflight description" of GET/SET_INFLIGHT_FD (vhost-user.rst). The C structure is 8-byte
 * aligned: 4 bytes of tail padding make it 24 bytes, which is what QEMU sends.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                        mmap_size (u64)                        |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                       mmap_offset (u64)                       |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |        num_queues (u16)       |        queue_size (u16)       |
 * +---------------------------------------------------------------+
 * |                        padding (u32)                          |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class InflightDescription {
    /** Offset of the size of the inflight area. */
    public static final int MMAP_SIZE_OFFSET = 0;
    /** Offset of the offset of the area in the fd. */
    public static final int MMAP_OFFSET_OFFSET = 8;
    /** Offset of the number of queues. */
    public static final int NUM_QUEUES_OFFSET = 16;
    /** Offset of the size of each queue. */
    public static final int QUEUE_SIZE_OFFSET = 18;
    /** Size of the payload in bytes. */
    public static final int ENCODED_LENGTH = 24;
    /** Offset of the tail padding. */
    public static final int PADDING_OFFSET = 20;

    private InflightDescription() {
    }

    /** Reads a InflightDescription in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the size of the inflight area} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long mmapSize() {
            return segment.get(NATIVE_U64, offset + MMAP_SIZE_OFFSET);
        }

        /** {@return the offset of the area in the fd} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long mmapOffset() {
            return segment.get(NATIVE_U64, offset + MMAP_OFFSET_OFFSET);
        }

        /** {@return the number of queues} */
        public int numQueues() {
            return Short.toUnsignedInt(segment.get(NATIVE_U16, offset + NUM_QUEUES_OFFSET));
        }

        /** {@return the size of each queue} */
        public int queueSize() {
            return Short.toUnsignedInt(segment.get(NATIVE_U16, offset + QUEUE_SIZE_OFFSET));
        }

    }

    /** Writes a InflightDescription in place; holds only a segment and an offset. */
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
         * Sets the size of the inflight area.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder mmapSize(long value) {
            segment.set(NATIVE_U64, offset + MMAP_SIZE_OFFSET, value);
            return this;
        }

        /**
         * Sets the offset of the area in the fd.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder mmapOffset(long value) {
            segment.set(NATIVE_U64, offset + MMAP_OFFSET_OFFSET, value);
            return this;
        }

        /**
         * Sets the number of queues.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 16 unsigned bits
         */
        public Encoder numQueues(int value) {
            WireLayout.checkU16("numQueues", value);
            segment.set(NATIVE_U16, offset + NUM_QUEUES_OFFSET, (short) value);
            return this;
        }

        /**
         * Sets the size of each queue.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 16 unsigned bits
         */
        public Encoder queueSize(int value) {
            WireLayout.checkU16("queueSize", value);
            segment.set(NATIVE_U16, offset + QUEUE_SIZE_OFFSET, (short) value);
            return this;
        }

    }
}
