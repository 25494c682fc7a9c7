package dev.outproc.vhost.message;

import java.lang.foreign.MemorySegment;

/**
 * The payload "crypto session description" of CREATE_CRYPTO_SESSION. <strong>Minimal codec.</strong> The
 * specification names this payload but never lays it out; the only definition is QEMU's
 * {@code VhostUserCryptoSession}, whose layout changed between QEMU versions (the session id moved from
 * the first to the last field when asymmetric sessions were added) and depends on QEMU-internal
 * structures. outproc therefore treats it as opaque bytes: at least one u64 and at most
 * {@link #MAX_BYTES}, passed to the device unchanged. CLOSE_CRYPTO_SESSION takes a plain {@link U64Payload}.
 */
public final class CryptoSession {
    /** The smallest payload accepted: one 64-bit field. */
    public static final int MIN_BYTES = 8;
    /** The largest payload accepted: the reader's default cap of 4 KiB. */
    public static final int MAX_BYTES = 4096;

    private CryptoSession() {
    }

    /** Reads the opaque payload in place. */
    public static final class Decoder {
        private MemorySegment segment;
        private long offset;
        private long length;

        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /**
         * Points this decoder at a payload.
         *
         * @param segment the buffer
         * @param offset where the payload starts
         * @param length the payload size (from the header)
         * @return this decoder
         */
        public Decoder wrap(MemorySegment segment, long offset, long length) {
            this.segment = segment;
            this.offset = offset;
            this.length = length;
            return this;
        }

        /** {@return the payload size} */
        public long length() {
            return length;
        }

        /**
         * Copies the payload out.
         *
         * @param destination where it goes, {@link #length()} bytes at {@code destinationOffset}
         * @param destinationOffset where in the destination
         */
        public void copyTo(MemorySegment destination, long destinationOffset) {
            MemorySegment.copy(segment, offset, destination, destinationOffset, length);
        }
    }

    /** Writes the opaque payload in place. */
    public static final class Encoder extends Flyweight<Encoder> {
        /** Creates an unwrapped encoder. */
        public Encoder() {
        }

        /**
         * Copies the payload in.
         *
         * @param source the bytes
         * @param sourceOffset where in the source
         * @param length how many, {@link #MIN_BYTES} to {@link #MAX_BYTES}
         * @return this encoder
         */
        public Encoder copyFrom(MemorySegment source, long sourceOffset, int length) {
            if (length < MIN_BYTES || length > MAX_BYTES) {
                throw new IllegalArgumentException("crypto session payload must be " + MIN_BYTES + ".." + MAX_BYTES
                        + " bytes, length=" + length);
            }
            MemorySegment.copy(source, sourceOffset, segment, offset, length);
            return this;
        }
    }
}
