package dev.outproc.vhost.message;

import java.lang.foreign.MemorySegment;

import static dev.outproc.vhost.message.WireLayout.NATIVE_U64;

/**
 * The "Memory region description" (vhost-user.rst): one region of guest memory and where it lies in the
 * front-end's address space and in the fd that backs it. Found in {@link MemTable} and
 * {@link SingleMemRegion}. The XEN_MMAP form (two more 32-bit fields) is not supported: outproc never
 * offers {@link ProtocolFeature#XEN_MMAP}.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                     guest_phys_addr (u64)                     |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                       memory_size (u64)                       |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                      userspace_addr (u64)                     |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                       mmap_offset (u64)                       |
 * |                                                               |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class MemoryRegion {
    /** Offset of the guest-physical address of the region. */
    public static final int GUEST_PHYS_ADDR_OFFSET = 0;
    /** Offset of the size in bytes. */
    public static final int MEMORY_SIZE_OFFSET = 8;
    /** Offset of the front-end user address of the region. */
    public static final int USER_ADDR_OFFSET = 16;
    /** Offset of the offset of the region in the fd. */
    public static final int MMAP_OFFSET_OFFSET = 24;
    /** Size of the payload in bytes. */
    public static final int ENCODED_LENGTH = 32;

    private MemoryRegion() {
    }

    /** Reads a MemoryRegion in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the guest-physical address of the region} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long guestPhysAddr() {
            return segment.get(NATIVE_U64, offset + GUEST_PHYS_ADDR_OFFSET);
        }

        /** {@return the size in bytes} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long memorySize() {
            return segment.get(NATIVE_U64, offset + MEMORY_SIZE_OFFSET);
        }

        /** {@return the front-end user address of the region} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long userAddr() {
            return segment.get(NATIVE_U64, offset + USER_ADDR_OFFSET);
        }

        /** {@return the offset of the region in the fd} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long mmapOffset() {
            return segment.get(NATIVE_U64, offset + MMAP_OFFSET_OFFSET);
        }

    }

    /** Writes a MemoryRegion in place; holds only a segment and an offset. */
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
         * Sets the guest-physical address of the region.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder guestPhysAddr(long value) {
            segment.set(NATIVE_U64, offset + GUEST_PHYS_ADDR_OFFSET, value);
            return this;
        }

        /**
         * Sets the size in bytes.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder memorySize(long value) {
            segment.set(NATIVE_U64, offset + MEMORY_SIZE_OFFSET, value);
            return this;
        }

        /**
         * Sets the front-end user address of the region.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder userAddr(long value) {
            segment.set(NATIVE_U64, offset + USER_ADDR_OFFSET, value);
            return this;
        }

        /**
         * Sets the offset of the region in the fd.
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
