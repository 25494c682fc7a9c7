package dev.outproc.vfio.message;

import java.util.List;

import static dev.outproc.vfio.message.WireLayout.NATIVE_U64;

/**
 * The data of {@code VFIO_DEVICE_FEATURE_MIGRATION} (Linux {@code struct vfio_device_feature_migration}):
 * which migration arcs the device supports.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                          flags (u64)                          |
 * |                                                               |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class MigrationFeature {
    /** Offset of {@code flags}. */
    public static final int FLAGS_OFFSET = 0;
    /** Size of the fixed part in bytes. */
    public static final int ENCODED_LENGTH = 8;
    /** {@code VFIO_MIGRATION_STOP_COPY} (mandatory). */
    public static final long STOP_COPY = 1L;
    /** {@code VFIO_MIGRATION_P2P}. */
    public static final long P2P = 2L;
    /** {@code VFIO_MIGRATION_PRE_COPY}. */
    public static final long PRE_COPY = 4L;
    /** Every field in wire order: per-field metadata for dumps and tests. */
    public static final List<WireField> FIELDS = List.of(
            new WireField("flags", FLAGS_OFFSET, 8));

    private MigrationFeature() {
    }

    /** Reads a MigrationFeature in place; holds only a segment and an offset. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the migration flags} (unsigned; compare with {@link Long#compareUnsigned}) */
        public long flags() {
            return segment.get(NATIVE_U64, offset + FLAGS_OFFSET);
        }
    }

    /** Writes a MigrationFeature in place; holds only a segment and an offset. */
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
         * Sets the migration flags.
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
