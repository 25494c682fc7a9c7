package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U64;

/**
 * The fixed part of {@code VFIO_USER_REGION_WRITE_MULTI} (vfio-user.rst): {@code wr_cnt}, followed in the command
 * by that many {@link RegionWriteMultiEntry}s; the reply carries only {@code wr_cnt}, the writes completed.
 * QEMU sends it with No_reply and at most {@link #MAX_WRITES} entries.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                          wr_cnt (u64)                         |
 * |                                                               |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class RegionWriteMulti {
    /** Offset of {@code wr_cnt}. */
    public static final int WR_CNT_OFFSET = 0;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 8;
    /** The most entries one message carries (QEMU's {@code VFIO_USER_MULTI_MAX}). */
    public static final int MAX_WRITES = 200;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("wrCnt", WR_CNT_OFFSET, 8));

    private RegionWriteMulti() {
    }

    /** Reads a RegionWriteMulti in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the number of writes} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long wrCnt() {
            return segment.get(NATIVE_U64, offset + WR_CNT_OFFSET);
        }

        /** {@return the offset in the segment where the data after the fixed part starts} */
        public long dataOffset() {
            return offset + ENCODED_LENGTH;
        }

    }

    /** Writes a RegionWriteMulti in place; holds only a segment and an offset. */
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
         * Sets the number of writes.
         *
         * @param value the value
         * @return this encoder
         */
        public Encoder wrCnt(long value) {
            segment.set(NATIVE_U64, offset + WR_CNT_OFFSET, value);
            return this;
        }

        /** {@return the offset in the segment where the data after the fixed part starts} */
        public long dataOffset() {
            return offset + ENCODED_LENGTH;
        }

    }
}
