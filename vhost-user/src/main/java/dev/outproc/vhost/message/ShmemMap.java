package dev.outproc.vhost.message;

import java.lang.foreign.MemorySegment;

import static dev.outproc.vhost.message.WireLayout.NATIVE_U64;
import static dev.outproc.vhost.message.WireLayout.NATIVE_U8;

/**
 * The payload "MMAP request" ({@code VhostUserMMap}) of the back-end's SHMEM_MAP and SHMEM_UNMAP
 * (vhost-user.rst): map {@code len} bytes at {@code fdOffset} of the fd into VIRTIO shared memory region
 * {@code shmid} at {@code shmOffset}. The 7 padding bytes keep the 64-bit fields aligned.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  shmid (u8)   |               padding (7 bytes)               |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                        fd_offset (u64)                        |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                        shm_offset (u64)                       |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                           len (u64)                           |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                          flags (u64)                          |
 * |                                                               |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class ShmemMap {
    /** Offset of the shared memory region id. */
    public static final int SHMID_OFFSET = 0;
    /** Offset of the offset in the fd. */
    public static final int FD_OFFSET_OFFSET = 8;
    /** Offset of the offset in the shared memory region. */
    public static final int SHM_OFFSET_OFFSET = 16;
    /** Offset of the length of the mapping. */
    public static final int LEN_OFFSET = 24;
    /** Offset of the mapping flags. */
    public static final int FLAGS_OFFSET = 32;
    /** Size of the payload in bytes. */
    public static final int ENCODED_LENGTH = 40;
    /** Offset of the padding. */
    public static final int PADDING_OFFSET = 1;
    /** Length of the padding. */
    public static final int PADDING_LENGTH = 7;
    /** Flag bit 0: the pages are mapped read-write (clear: read-only). */
    public static final long FLAG_MAP_RW = 1;
    /** Every flag defined. */
    public static final long KNOWN_FLAGS = FLAG_MAP_RW;

    private ShmemMap() {
    }

    /** Reads a ShmemMap in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the shared memory region id} */
        public int shmid() {
            return Byte.toUnsignedInt(segment.get(NATIVE_U8, offset + SHMID_OFFSET));
        }

        /** {@return the offset in the fd} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long fdOffset() {
            return segment.get(NATIVE_U64, offset + FD_OFFSET_OFFSET);
        }

        /** {@return the offset in the shared memory region} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long shmOffset() {
            return segment.get(NATIVE_U64, offset + SHM_OFFSET_OFFSET);
        }

        /** {@return the length of the mapping} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long len() {
            return segment.get(NATIVE_U64, offset + LEN_OFFSET);
        }

        /** {@return the mapping flags} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long flags() {
            return segment.get(NATIVE_U64, offset + FLAGS_OFFSET);
        }

    }

    /** Writes a ShmemMap in place; holds only a segment and an offset. */
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
         * Sets the shared memory region id.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 8 unsigned bits
         */
        public Encoder shmid(int value) {
            WireLayout.checkU8("shmid", value);
            segment.set(NATIVE_U8, offset + SHMID_OFFSET, (byte) value);
            return this;
        }

        /**
         * Sets the offset in the fd.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder fdOffset(long value) {
            segment.set(NATIVE_U64, offset + FD_OFFSET_OFFSET, value);
            return this;
        }

        /**
         * Sets the offset in the shared memory region.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder shmOffset(long value) {
            segment.set(NATIVE_U64, offset + SHM_OFFSET_OFFSET, value);
            return this;
        }

        /**
         * Sets the length of the mapping.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder len(long value) {
            segment.set(NATIVE_U64, offset + LEN_OFFSET, value);
            return this;
        }

        /**
         * Sets the mapping flags.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder flags(long value) {
            segment.set(NATIVE_U64, offset + FLAGS_OFFSET, value);
            return this;
        }

    }
}
