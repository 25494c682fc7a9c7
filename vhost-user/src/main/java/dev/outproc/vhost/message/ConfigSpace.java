package dev.outproc.vhost.message;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static dev.outproc.vhost.message.WireLayout.NATIVE_U32;

/**
 * The payload "Virtio device config space" of GET_CONFIG and SET_CONFIG (vhost-user.rst): an access of
 * {@code size} bytes at {@code offset} of the device's config space, followed by those bytes. The
 * payload is exactly {@code 12 + size} bytes and {@code size} is at most 256
 * ({@code VHOST_USER_MAX_CONFIG_SIZE} in QEMU).
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                         offset (u32)                          |
 * +---------------------------------------------------------------+
 * |                          size (u32)                           |
 * +---------------------------------------------------------------+
 * |                          flags (u32)                          |
 * +---------------------------------------------------------------+
 * |                     config bytes (size)                       |
 * ~                                                               ~
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class ConfigSpace {
    /** Offset of the config-space offset. */
    public static final int CONFIG_OFFSET_OFFSET = 0;
    /** Offset of the access size. */
    public static final int CONFIG_SIZE_OFFSET = 4;
    /** Offset of the flags. */
    public static final int FLAGS_OFFSET = 8;
    /** Offset of the config bytes. */
    public static final int PAYLOAD_OFFSET = 12;
    /** The largest config access. */
    public static final int MAX_CONFIG_BYTES = 256;
    /** Flags value 0: a front-end write of writable fields. */
    public static final int FLAGS_WRITABLE = 0;
    /** Flags value 1: a write during live migration (read-only fields allowed). */
    public static final int FLAGS_MIGRATION = 1;

    private ConfigSpace() {
    }

    /**
     * {@return the payload size for an access of {@code configSize} bytes}
     *
     * @param configSize the access size
     */
    public static int encodedLength(int configSize) {
        return PAYLOAD_OFFSET + configSize;
    }

    /** Reads the payload in place. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the offset in config space} */
        public long configOffset() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + CONFIG_OFFSET_OFFSET));
        }

        /** {@return the access size} */
        public long configSize() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + CONFIG_SIZE_OFFSET));
        }

        /** {@return the flags} */
        public long flags() {
            return Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + FLAGS_OFFSET));
        }

        /**
         * {@return one config byte}
         *
         * @param index 0 to {@link #configSize()} - 1
         */
        public int configByte(int index) {
            if (index < 0 || index >= configSize()) {
                throw new IndexOutOfBoundsException("config byte " + index + " of " + configSize());
            }
            return Byte.toUnsignedInt(segment.get(ValueLayout.JAVA_BYTE, offset + PAYLOAD_OFFSET + index));
        }

        /**
         * Copies the config bytes out.
         *
         * @param destination where they go, {@code configSize()} bytes at {@code destinationOffset}
         * @param destinationOffset where in the destination
         */
        public void copyConfigTo(MemorySegment destination, long destinationOffset) {
            MemorySegment.copy(segment, offset + PAYLOAD_OFFSET, destination, destinationOffset, configSize());
        }

        /**
         * {@return the configuration bytes in place: a slice of the wrapped segment, no copy, valid as long
         * as the message buffer is}
         *
         * @throws IndexOutOfBoundsException when the size reaches past the wrapped segment
         */
        public MemorySegment config() {
            return segment.asSlice(offset + PAYLOAD_OFFSET, configSize());
        }
    }

    /** Writes the payload in place. */
    public static final class Encoder extends Flyweight<Encoder> {
        /** Creates an unwrapped encoder. */
        public Encoder() {
        }

        /**
         * Writes the three header fields.
         *
         * @param configOffset the offset in config space
         * @param configSize the access size, 0–256
         * @param flags {@link #FLAGS_WRITABLE} or {@link #FLAGS_MIGRATION}
         * @return this encoder
         */
        public Encoder access(long configOffset, int configSize, long flags) {
            if (configSize < 0 || configSize > MAX_CONFIG_BYTES) {
                throw new IllegalArgumentException("config size must be 0.." + MAX_CONFIG_BYTES + ", size=" + configSize);
            }
            WireLayout.checkU32("configOffset", configOffset);
            WireLayout.checkU32("flags", flags);
            segment.set(NATIVE_U32, offset + CONFIG_OFFSET_OFFSET, (int) configOffset);
            segment.set(NATIVE_U32, offset + CONFIG_SIZE_OFFSET, configSize);
            segment.set(NATIVE_U32, offset + FLAGS_OFFSET, (int) flags);
            return this;
        }

        /**
         * Writes one config byte.
         *
         * @param index the byte index
         * @param value the byte
         * @return this encoder
         */
        public Encoder configByte(int index, int value) {
            if (index < 0 || index >= MAX_CONFIG_BYTES) {
                throw new IndexOutOfBoundsException("config byte " + index + " of " + MAX_CONFIG_BYTES);
            }
            segment.set(ValueLayout.JAVA_BYTE, offset + PAYLOAD_OFFSET + index, (byte) value);
            return this;
        }

        /**
         * Copies config bytes in.
         *
         * @param source where they come from
         * @param sourceOffset where in the source
         * @param length how many, at most 256
         * @return this encoder
         */
        public Encoder copyConfigFrom(MemorySegment source, long sourceOffset, int length) {
            if (length < 0 || length > MAX_CONFIG_BYTES) {
                throw new IllegalArgumentException("config size must be 0.." + MAX_CONFIG_BYTES + ", length=" + length);
            }
            MemorySegment.copy(source, sourceOffset, segment, offset + PAYLOAD_OFFSET, length);
            return this;
        }
    }
}
