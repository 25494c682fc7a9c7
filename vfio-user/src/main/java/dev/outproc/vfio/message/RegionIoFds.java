package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U32;

/**
 * The payload of {@code VFIO_USER_DEVICE_GET_REGION_IO_FDS} (vfio-user.rst): the command names the region;
 * the reply appends {@code count} {@link SubRegionIoFd}s and carries their fds.
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
 * |                          count (u32)                          |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class RegionIoFds {
    /** Offset of {@code argsz}. */
    public static final int ARGSZ_OFFSET = 0;
    /** Offset of {@code flags}. */
    public static final int FLAGS_OFFSET = 4;
    /** Offset of {@code index}. */
    public static final int INDEX_OFFSET = 8;
    /** Offset of {@code count}. */
    public static final int COUNT_OFFSET = 12;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 16;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("argsz", ARGSZ_OFFSET, 4),
            new WireField("flags", FLAGS_OFFSET, 4),
            new WireField("index", INDEX_OFFSET, 4),
            new WireField("count", COUNT_OFFSET, 4));

    private RegionIoFds() {
    }

    /** Reads a RegionIoFds in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return argsz} */
        public long argsz() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + ARGSZ_OFFSET));
        }

        /** {@return the flags (zero)} */
        public long flags() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + FLAGS_OFFSET));
        }

        /** {@return the region index} */
        public long index() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + INDEX_OFFSET));
        }

        /** {@return the number of sub-regions} */
        public long count() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + COUNT_OFFSET));
        }

        /** {@return the offset in the segment where the data after the fixed part starts} */
        public long dataOffset() {
            return offset + ENCODED_LENGTH;
        }

    }

    /** Writes a RegionIoFds in place; holds only a segment and an offset. */
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
         * Sets argsz.
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
         * Sets the flags (zero).
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
         * Sets the number of sub-regions.
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
