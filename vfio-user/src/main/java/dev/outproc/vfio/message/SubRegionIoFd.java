package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U32;
import static dev.outproc.vfio.message.WireLayout.NATIVE_U64;

/**
 * One sub-region of a {@code VFIO_USER_DEVICE_GET_REGION_IO_FDS} reply (vfio-user.rst, "Sub-Region IO FD info
 * format"): ioeventfd ({@code datamatch} in the last field) or ioregionfd ({@code user_data} there). libvfio-user
 * also defines a 48-byte "shadow" ioeventfd (type 2) that the specification does not.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                          offset (u64)                         |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                           size (u64)                          |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                         fd_index (u32)                        |
 * +---------------------------------------------------------------+
 * |                           type (u32)                          |
 * +---------------------------------------------------------------+
 * |                          flags (u32)                          |
 * +---------------------------------------------------------------+
 * |                         padding (u32)                         |
 * +---------------------------------------------------------------+
 * |                        datamatch (u64)                        |
 * |                                                               |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class SubRegionIoFd {
    /** Offset of {@code offset}. */
    public static final int OFFSET_OFFSET = 0;
    /** Offset of {@code size}. */
    public static final int SIZE_OFFSET = 8;
    /** Offset of {@code fd_index}. */
    public static final int FD_INDEX_OFFSET = 16;
    /** Offset of {@code type}. */
    public static final int TYPE_OFFSET = 20;
    /** Offset of {@code flags}. */
    public static final int FLAGS_OFFSET = 24;
    /** Offset of {@code padding}. */
    public static final int PADDING_OFFSET = 28;
    /** Offset of {@code datamatch}. */
    public static final int DATAMATCH_OFFSET = 32;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 40;
    /** {@code VFIO_USER_IO_FD_TYPE_IOEVENTFD}. */
    public static final int TYPE_IOEVENTFD = 0;
    /** {@code VFIO_USER_IO_FD_TYPE_IOREGIONFD}. */
    public static final int TYPE_IOREGIONFD = 1;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("offset", OFFSET_OFFSET, 8),
            new WireField("size", SIZE_OFFSET, 8),
            new WireField("fdIndex", FD_INDEX_OFFSET, 4),
            new WireField("type", TYPE_OFFSET, 4),
            new WireField("flags", FLAGS_OFFSET, 4),
            new WireField("padding", PADDING_OFFSET, 4),
            new WireField("datamatch", DATAMATCH_OFFSET, 8));

    private SubRegionIoFd() {
    }

    /** Reads a SubRegionIoFd in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the offset of the sub-region in the region} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long offset() {
            return segment.get(NATIVE_U64, offset + OFFSET_OFFSET);
        }

        /** {@return the size of the sub-region} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long size() {
            return segment.get(NATIVE_U64, offset + SIZE_OFFSET);
        }

        /** {@return the index of its fd in the message} */
        public long fdIndex() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + FD_INDEX_OFFSET));
        }

        /** {@return the sub-region type} */
        public long type() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + TYPE_OFFSET));
        }

        /** {@return the KVM flags} */
        public long flags() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + FLAGS_OFFSET));
        }

        /** {@return padding, zero} */
        public long padding() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + PADDING_OFFSET));
        }

        /** {@return datamatch (ioeventfd) or user_data (ioregionfd)} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long datamatch() {
            return segment.get(NATIVE_U64, offset + DATAMATCH_OFFSET);
        }
    }

    /** Writes a SubRegionIoFd in place; holds only a segment and an offset. */
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
         * Sets the offset of the sub-region in the region.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder offset(long value) {
            segment.set(NATIVE_U64, offset + OFFSET_OFFSET, value);
            return this;
        }

        /**
         * Sets the size of the sub-region.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder size(long value) {
            segment.set(NATIVE_U64, offset + SIZE_OFFSET, value);
            return this;
        }

        /**
         * Sets the index of its fd in the message.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder fdIndex(long value) {
            WireLayout.checkU32("fdIndex", value);
            segment.set(NATIVE_U32, offset + FD_INDEX_OFFSET, (int) value);
            return this;
        }

        /**
         * Sets the sub-region type.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder type(long value) {
            WireLayout.checkU32("type", value);
            segment.set(NATIVE_U32, offset + TYPE_OFFSET, (int) value);
            return this;
        }

        /**
         * Sets the KVM flags.
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
         * Sets padding, zero.
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder padding(long value) {
            WireLayout.checkU32("padding", value);
            segment.set(NATIVE_U32, offset + PADDING_OFFSET, (int) value);
            return this;
        }

        /**
         * Sets datamatch (ioeventfd) or user_data (ioregionfd).
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder datamatch(long value) {
            segment.set(NATIVE_U64, offset + DATAMATCH_OFFSET, value);
            return this;
        }
    }
}
