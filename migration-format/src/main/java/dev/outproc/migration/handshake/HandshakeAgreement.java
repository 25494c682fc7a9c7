package dev.outproc.migration.handshake;

import dev.outproc.migration.integrity.SigningKey;
import dev.outproc.migration.integrity.VerifyingKey;
import java.util.Objects;
import java.util.Set;

/**
 * What source and destination agreed on before any state moves: the model, the format class and version, the
 * nonce and the hash of the handshake messages, and the integrity requirements. The writer stamps the nonce and
 * handshake hash into the stream header; the reader refuses a stream whose header differs, which is what stops a
 * stream from being replayed into a second destination.
 *
 * <p>Obtained from {@link MigrationSession} after a handshake, or built directly for local save/restore:
 * {@snippet :
 * HandshakeAgreement local = HandshakeAgreement.builder("virtio-spec.org/pci/virtio-blk",
 *         "virtio-spec.org/pci/virtio-blk/state", 1).build();
 * }
 */
public final class HandshakeAgreement {
    /** Length of nonces and hashes. */
    public static final int NONCE_BYTES = 32;

    private final String modelId;
    private final String formatClass;
    private final int formatVersion;
    private final byte[] nonce;
    private final byte[] handshakeHash;
    private final byte[] macKey;
    private final boolean digests;
    private final SigningKey signingKey;
    private final Set<VerifyingKey> trustedStreamSigners;
    private final boolean signatureRequired;
    private final String implementationId;

    private HandshakeAgreement(Builder b) {
        this.modelId = b.modelId;
        this.formatClass = b.formatClass;
        this.formatVersion = b.formatVersion;
        this.nonce = b.nonce.clone();
        this.handshakeHash = b.handshakeHash.clone();
        this.macKey = b.macKey == null ? null : b.macKey.clone();
        this.digests = b.digests;
        this.signingKey = b.signingKey;
        this.trustedStreamSigners = Set.copyOf(b.trustedStreamSigners);
        this.signatureRequired = b.signatureRequired || !b.trustedStreamSigners.isEmpty();
        this.implementationId = b.implementationId;
    }

    /**
     * Starts a builder.
     *
     * @param modelId device model id
     * @param formatClass state-format class id
     * @param formatVersion agreed format version
     * @return a builder with a zero nonce and hash, digests on, no MAC and no signature
     */
    public static Builder builder(String modelId, String formatClass, int formatVersion) {
        return new Builder(modelId, formatClass, formatVersion);
    }

    /** @return device model id */
    public String modelId() {
        return modelId;
    }

    /** @return state-format class id */
    public String formatClass() {
        return formatClass;
    }

    /** @return agreed format version; a writer that can write newer versions downgrades to this one */
    public int formatVersion() {
        return formatVersion;
    }

    /** @return a copy of the source's 32-byte nonce */
    public byte[] nonce() {
        return nonce.clone();
    }

    /** @return a copy of the 32-byte SHA-256 of the encoded offer and answer (zero without a handshake) */
    public byte[] handshakeHash() {
        return handshakeHash.clone();
    }

    /** @return a copy of the MAC key, or null when no MAC is used */
    public byte[] macKey() {
        return macKey == null ? null : macKey.clone();
    }

    /** @return whether per-section digests and the transcript are written and required */
    public boolean digests() {
        return digests;
    }

    /** @return the key the writer signs the trailer with, or null */
    public SigningKey signingKey() {
        return signingKey;
    }

    /** @return keys the reader accepts a trailer signature from; non-empty means a signature is required */
    public Set<VerifyingKey> trustedStreamSigners() {
        return trustedStreamSigners;
    }

    /** @return whether the reader requires a signed trailer (by one of {@link #trustedStreamSigners()}, if any) */
    public boolean signatureRequired() {
        return signatureRequired;
    }

    /** @return informative id of the writing implementation */
    public String implementationId() {
        return implementationId;
    }

    /** Builder of {@link HandshakeAgreement}. */
    public static final class Builder {
        private final String modelId;
        private final String formatClass;
        private final int formatVersion;
        private byte[] nonce = new byte[NONCE_BYTES];
        private byte[] handshakeHash = new byte[NONCE_BYTES];
        private byte[] macKey;
        private boolean digests = true;
        private SigningKey signingKey;
        private Set<VerifyingKey> trustedStreamSigners = Set.of();
        private boolean signatureRequired;
        private String implementationId = "";

        private Builder(String modelId, String formatClass, int formatVersion) {
            this.modelId = Objects.requireNonNull(modelId);
            this.formatClass = Objects.requireNonNull(formatClass);
            if (formatVersion < 1) {
                throw new IllegalArgumentException("format version must be >= 1, formatVersion=" + formatVersion);
            }
            this.formatVersion = formatVersion;
        }

        /**
         * @param v 32-byte nonce
         * @return this
         */
        public Builder nonce(byte[] v) {
            this.nonce = check32(v, "nonce");
            return this;
        }

        /**
         * @param v 32-byte handshake hash
         * @return this
         */
        public Builder handshakeHash(byte[] v) {
            this.handshakeHash = check32(v, "handshake hash");
            return this;
        }

        /**
         * @param v 32-byte MAC key, or null for none
         * @return this
         */
        public Builder macKey(byte[] v) {
            this.macKey = v == null ? null : check32(v, "MAC key");
            return this;
        }

        /**
         * Turns digests off or on. Off is only for trusted local transfers and benchmarks: without digests a flipped
         * bit in a blob goes unnoticed, and MAC and signature are impossible.
         *
         * @param v whether digests are used
         * @return this
         */
        public Builder digests(boolean v) {
            this.digests = v;
            return this;
        }

        /**
         * @param v key to sign the trailer with, or null
         * @return this
         */
        public Builder signWith(SigningKey v) {
            this.signingKey = v;
            return this;
        }

        /**
         * @param v keys whose trailer signature the reader accepts
         * @return this
         */
        public Builder requireSignatureBy(Set<VerifyingKey> v) {
            this.trustedStreamSigners = Set.copyOf(v);
            return this;
        }

        /**
         * @param v whether the reader requires a signed trailer even without pinned signers
         * @return this
         */
        public Builder requireSignature(boolean v) {
            this.signatureRequired = v;
            return this;
        }

        /**
         * @param v informative implementation id
         * @return this
         */
        public Builder implementationId(String v) {
            this.implementationId = Objects.requireNonNull(v);
            return this;
        }

        /** @return the agreement */
        public HandshakeAgreement build() {
            if (!digests && (macKey != null || signingKey != null || signatureRequired || !trustedStreamSigners.isEmpty())) {
                throw new IllegalStateException("MAC and signature cover the transcript and need digests");
            }
            return new HandshakeAgreement(this);
        }

        private static byte[] check32(byte[] v, String what) {
            if (v.length != NONCE_BYTES) {
                throw new IllegalArgumentException(what + " must be 32 bytes, length=" + v.length);
            }
            return v.clone();
        }
    }
}
