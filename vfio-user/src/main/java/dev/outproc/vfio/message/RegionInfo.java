package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U32;
import static dev.outproc.vfio.message.WireLayout.NATIVE_U64;

/**
 * The payload of {@code VFIO_USER_DEVICE_GET_REGION_INFO} (vfio-user.rst; Linux {@code struct vfio_region_info}).
 * The command sets {@code argsz} and {@code index}; the reply sets every field and, when {@code argsz} in the
 * command was large enough, appends a capability chain ({@link RegionCapabilities}) that starts at
 * {@code cap_offset}, counted from the start of this structure. A reply with {@link #FLAG_MMAP} carries the
 * region's fd; {@code offset} is the mmap offset in it.
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
 * |                        cap_offset (u32)                       |
 * +---------------------------------------------------------------+
 * |                           size (u64)                          |
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                          offset (u64)                         |
 * |                                                               |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class RegionInfo {
    /** Offset of {@code argsz}. */
    public static final int ARGSZ_OFFSET = 0;
    /** Offset of {@code flags}. */
    public static final int FLAGS_OFFSET = 4;
    /** Offset of {@code index}. */
    public static final int INDEX_OFFSET = 8;
    /** Offset of {@code cap_offset}. */
    public static final int CAP_OFFSET_OFFSET = 12;
    /** Offset of {@code size}. */
    public static final int SIZE_OFFSET = 16;
    /** Offset of {@code offset}. */
    public static final int OFFSET_OFFSET = 24;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 32;
    /** {@code VFIO_REGION_INFO_FLAG_READ}. */
    public static final int FLAG_READ = 1;
    /** {@code VFIO_REGION_INFO_FLAG_WRITE}. */
    public static final int FLAG_WRITE = 2;
    /** {@code VFIO_REGION_INFO_FLAG_MMAP}: the reply carries an fd to mmap. */
    public static final int FLAG_MMAP = 4;
    /** {@code VFIO_REGION_INFO_FLAG_CAPS}: a capability chain follows. */
    public static final int FLAG_CAPS = 8;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("argsz", ARGSZ_OFFSET, 4),
            new WireField("flags", FLAGS_OFFSET, 4),
            new WireField("index", INDEX_OFFSET, 4),
            new WireField("capOffset", CAP_OFFSET_OFFSET, 4),
            new WireField("size", SIZE_OFFSET, 8),
            new WireField("offset", OFFSET_OFFSET, 8));

    private RegionInfo() {
    }

    /** Reads a RegionInfo in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return argsz: the maximum reply size (command) or the size the full reply needs (reply)} */
        public long argsz() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + ARGSZ_OFFSET));
        }

        /** {@return the region flags} */
        public long flags() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + FLAGS_OFFSET));
        }

        /** {@return the region index} */
        public long index() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + INDEX_OFFSET));
        }

        /** {@return the offset of the first capability (0 when none)} */
        public long capOffset() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + CAP_OFFSET_OFFSET));
        }

        /** {@return the size of the region} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long size() {
            return segment.get(NATIVE_U64, offset + SIZE_OFFSET);
        }

        /** {@return the mmap offset of the region in its fd} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long offset() {
            return segment.get(NATIVE_U64, offset + OFFSET_OFFSET);
        }
    }

    /** Writes a RegionInfo in place; holds only a segment and an offset. */
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
         * Sets argsz: the maximum reply size (command) or the size the full reply needs (reply).
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
         * Sets the region flags.
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
         * Sets the region index.
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
         * Sets the offset of the first capability (0 when none).
         *
         * @param value the value
         * @return this encoder
         * @throws IllegalArgumentException when the value does not fit in 32 unsigned bits
         */
        public Encoder capOffset(long value) {
            WireLayout.checkU32("capOffset", value);
            segment.set(NATIVE_U32, offset + CAP_OFFSET_OFFSET, (int) value);
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

        /**
         * Sets the mmap offset of the region in its fd.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder offset(long value) {
            segment.set(NATIVE_U64, offset + OFFSET_OFFSET, value);
            return this;
        }
    }
}
