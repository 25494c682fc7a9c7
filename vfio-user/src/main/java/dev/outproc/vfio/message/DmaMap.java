package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U32;
import static dev.outproc.vfio.message.WireLayout.NATIVE_U64;

/**
 * The payload of {@code VFIO_USER_DMA_MAP} (vfio-user.rst): a DMA region the server may access, backed by
 * the fd that travels with the message (mapped at {@code offset}) or, without an fd, reachable only through
 * {@code VFIO_USER_DMA_READ}/{@code VFIO_USER_DMA_WRITE}. The reply has no payload. QEMU names the address
 * {@code iova}; the specification names it {@code address}.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                          argsz (u32)                          |
 * +---------------------------------------------------------------+
 * |                          flags (u32)                          |
 * +---------------------------------------------------------------+
 * |                          offset (u64)                         |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                         address (u64)                         |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                           size (u64)                          |
 * |                                                               |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class DmaMap {
    /** Offset of {@code argsz}. */
    public static final int ARGSZ_OFFSET = 0;
    /** Offset of {@code flags}. */
    public static final int FLAGS_OFFSET = 4;
    /** Offset of {@code offset}. */
    public static final int OFFSET_OFFSET = 8;
    /** Offset of {@code address}. */
    public static final int ADDRESS_OFFSET = 16;
    /** Offset of {@code size}. */
    public static final int SIZE_OFFSET = 24;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 32;
    /** Flag bit 0: the region can be read. */
    public static final int FLAG_READ = 1;
    /** Flag bit 1: the region can be written. */
    public static final int FLAG_WRITE = 2;
    /** Every flag the specification defines. */
    public static final int KNOWN_FLAGS = FLAG_READ | FLAG_WRITE;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("argsz", ARGSZ_OFFSET, 4),
            new WireField("flags", FLAGS_OFFSET, 4),
            new WireField("offset", OFFSET_OFFSET, 8),
            new WireField("address", ADDRESS_OFFSET, 8),
            new WireField("size", SIZE_OFFSET, 8));

    private DmaMap() {
    }

    /** Reads a DmaMap in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the size of this structure (32)} */
        public long argsz() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + ARGSZ_OFFSET));
        }

        /** {@return the access flags} */
        public long flags() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + FLAGS_OFFSET));
        }

        /** {@return the file offset of the region in the fd (0 without an fd)} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long offset() {
            return segment.get(NATIVE_U64, offset + OFFSET_OFFSET);
        }

        /** {@return the base DMA address} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long address() {
            return segment.get(NATIVE_U64, offset + ADDRESS_OFFSET);
        }

        /** {@return the size of the region} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long size() {
            return segment.get(NATIVE_U64, offset + SIZE_OFFSET);
        }
    }

    /** Writes a DmaMap in place; holds only a segment and an offset. */
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
         * Sets the size of this structure (32).
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
         * Sets the access flags.
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
         * Sets the file offset of the region in the fd (0 without an fd).
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder offset(long value) {
            segment.set(NATIVE_U64, offset + OFFSET_OFFSET, value);
            return this;
        }

        /**
         * Sets the base DMA address.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder address(long value) {
            segment.set(NATIVE_U64, offset + ADDRESS_OFFSET, value);
            return this;
        }

        /**
         * Sets the size of the region.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder size(long value) {
            segment.set(NATIVE_U64, offset + SIZE_OFFSET, value);
            return this;
        }
    }
}
