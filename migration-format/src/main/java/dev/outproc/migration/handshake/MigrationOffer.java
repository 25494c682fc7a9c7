package dev.outproc.migration.handshake;

/**
 * The source's offer: what it is, the versions it can write, a fresh nonce, the digest of its model definition and,
 * when it wants a MAC, its ephemeral X25519 public key.
 *
 * @param source the source's descriptor
 * @param nonce 32 fresh random bytes; the stream carries them, so it cannot be replayed into another migration
 * @param modelDigest SHA-256 of the source's canonical model entry (32 bytes), or empty
 * @param keyAgreementPublicKey the source's X25519 public key (32 bytes) to derive a MAC key, or empty for no MAC
 */
public record MigrationOffer(DeviceDescriptor source, byte[] nonce, byte[] modelDigest, byte[] keyAgreementPublicKey) {
    /** Canonical constructor: copies the arrays. */
    public MigrationOffer {
        nonce = nonce.clone();
        modelDigest = modelDigest.clone();
        keyAgreementPublicKey = keyAgreementPublicKey.clone();
    }

    @Override
    public byte[] nonce() {
        return nonce.clone();
    }

    @Override
    public byte[] modelDigest() {
        return modelDigest.clone();
    }

    @Override
    public byte[] keyAgreementPublicKey() {
        return keyAgreementPublicKey.clone();
    }

    /** @return whether the source asks for a MAC */
    public boolean wantsMac() {
        return keyAgreementPublicKey.length == 32;
    }
}
