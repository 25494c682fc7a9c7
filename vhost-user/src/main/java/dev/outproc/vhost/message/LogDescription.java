package dev.outproc.vhost.message;

import java.lang.foreign.MemorySegment;

import static dev.outproc.vhost.message.WireLayout.NATIVE_U64;

/**
 * The payload "Log description" of SET_LOG_BASE (vhost-user.rst, with LOG_SHMFD): the dirty log is
 * {@code mmapSize} bytes at {@code mmapOffset} in the fd that comes with the message.
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
 * </pre>
 */
public final class LogDescription {
    /** Offset of the size of the log area. */
    public static final int MMAP_SIZE_OFFSET = 0;
    /** Offset of the offset of the log in the fd. */
    public static final int MMAP_OFFSET_OFFSET = 8;
    /** Size of the payload in bytes. */
    public static final int ENCODED_LENGTH = 16;

    private LogDescription() {
    }

    /** Reads a LogDescription in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the size of the log area} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long mmapSize() {
            return segment.get(NATIVE_U64, offset + MMAP_SIZE_OFFSET);
        }

        /** {@return the offset of the log in the fd} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long mmapOffset() {
            return segment.get(NATIVE_U64, offset + MMAP_OFFSET_OFFSET);
        }

    }

    /** Writes a LogDescription in place; holds only a segment and an offset. */
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
         * Sets the size of the log area.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder mmapSize(long value) {
            segment.set(NATIVE_U64, offset + MMAP_SIZE_OFFSET, value);
            return this;
        }

        /**
         * Sets the offset of the log in the fd.
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
