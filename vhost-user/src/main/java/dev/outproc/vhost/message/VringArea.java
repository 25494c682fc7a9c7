package dev.outproc.vhost.message;

import java.lang.foreign.MemorySegment;

import static dev.outproc.vhost.message.WireLayout.NATIVE_U64;

/**
 * The payload "Vring area description" of the back-end's VRING_HOST_NOTIFIER_MSG (vhost-user.rst): the
 * u64 holds the queue index in bits 0–7 and, in bit 8, "no fd" (the notifier is removed); size and
 * offset locate the area in the fd.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                    u64 (index, flags) (u64)                   |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                           size (u64)                          |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                          offset (u64)                         |
 * |                                                               |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class VringArea {
    /** Offset of the word holding the queue index and flags. */
    public static final int INDEX_AND_FLAGS_OFFSET = 0;
    /** Offset of the size of the area (the host page size). */
    public static final int MMAP_SIZE_OFFSET = 8;
    /** Offset of the offset of the area in the fd. */
    public static final int MMAP_OFFSET_OFFSET = 16;
    /** Size of the payload in bytes. */
    public static final int ENCODED_LENGTH = 24;

    private VringArea() {
    }

    /** Reads a VringArea in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the word holding the queue index and flags} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long indexAndFlags() {
            return segment.get(NATIVE_U64, offset + INDEX_AND_FLAGS_OFFSET);
        }

        /** {@return the size of the area (the host page size)} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long mmapSize() {
            return segment.get(NATIVE_U64, offset + MMAP_SIZE_OFFSET);
        }

        /** {@return the offset of the area in the fd} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long mmapOffset() {
            return segment.get(NATIVE_U64, offset + MMAP_OFFSET_OFFSET);
        }

        /** {@return the queue index (bits 0–7)} */
        public int queueIndex() {
            return VringFdIndex.index(indexAndFlags());
        }

        /** {@return whether bit 8 says that no fd comes with the message} */
        public boolean noFd() {
            return VringFdIndex.noFd(indexAndFlags());
        }

    }

    /** Writes a VringArea in place; holds only a segment and an offset. */
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
         * Sets the word holding the queue index and flags.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder indexAndFlags(long value) {
            segment.set(NATIVE_U64, offset + INDEX_AND_FLAGS_OFFSET, value);
            return this;
        }

        /**
         * Sets the size of the area (the host page size).
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

    }
}
