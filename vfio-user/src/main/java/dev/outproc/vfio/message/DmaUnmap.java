package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U32;
import static dev.outproc.vfio.message.WireLayout.NATIVE_U64;

/**
 * The payload of {@code VFIO_USER_DMA_UNMAP} (vfio-user.rst): the command names a DMA region by its exact
 * address and size; the reply echoes the entry. The specification says flags are unused; QEMU sends
 * {@link #FLAG_ALL} (Linux {@code VFIO_DMA_UNMAP_FLAG_ALL}, address and size 0) to drop every mapping, and
 * libvfio-user accepts it. {@link #FLAG_GET_DIRTY_BITMAP} belongs to the retired dirty-page protocol.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                          argsz (u32)                          |
 * +---------------------------------------------------------------+
 * |                          flags (u32)                          |
 * +---------------------------------------------------------------+
 * |                         address (u64)                         |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                           size (u64)                          |
 * |                                                               |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class DmaUnmap {
    /** Offset of {@code argsz}. */
    public static final int ARGSZ_OFFSET = 0;
    /** Offset of {@code flags}. */
    public static final int FLAGS_OFFSET = 4;
    /** Offset of {@code address}. */
    public static final int ADDRESS_OFFSET = 8;
    /** Offset of {@code size}. */
    public static final int SIZE_OFFSET = 16;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 24;
    /** Flag bit 0, {@code VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP}: retired with command 14, refused. */
    public static final int FLAG_GET_DIRTY_BITMAP = 1;
    /** Flag bit 1, {@code VFIO_DMA_UNMAP_FLAG_ALL}: unmap every region (address and size must be 0). */
    public static final int FLAG_ALL = 2;
    /** Every flag a peer may send. */
    public static final int KNOWN_FLAGS = FLAG_GET_DIRTY_BITMAP | FLAG_ALL;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("argsz", ARGSZ_OFFSET, 4),
            new WireField("flags", FLAGS_OFFSET, 4),
            new WireField("address", ADDRESS_OFFSET, 8),
            new WireField("size", SIZE_OFFSET, 8));

    private DmaUnmap() {
    }

    /** Reads a DmaUnmap in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the maximum reply payload size} */
        public long argsz() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + ARGSZ_OFFSET));
        }

        /** {@return the flags} */
        public long flags() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + FLAGS_OFFSET));
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

    /** Writes a DmaUnmap in place; holds only a segment and an offset. */
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
         * Sets the maximum reply payload size.
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
         * Sets the flags.
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
