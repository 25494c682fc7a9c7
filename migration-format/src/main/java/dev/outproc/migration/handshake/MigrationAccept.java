package dev.outproc.migration.handshake;

/**
 * The destination accepts: which version to write and, when a MAC was asked for, its X25519 public key.
 *
 * @param nonce the offer's nonce
 * @param formatVersion the version the source must write
 * @param modelId the model
 * @param formatClass the format class
 * @param destinationImplementation the destination's implementation id
 * @param keyAgreementPublicKey the destination's X25519 public key, or empty
 */
public record MigrationAccept(byte[] nonce, int formatVersion, String modelId, String formatClass,
        String destinationImplementation, byte[] keyAgreementPublicKey) implements MigrationAnswer {
    /** Canonical constructor: copies the arrays. */
    public MigrationAccept {
        nonce = nonce.clone();
        keyAgreementPublicKey = keyAgreementPublicKey.clone();
    }

    @Override
    public byte[] nonce() {
        return nonce.clone();
    }

    @Override
    public byte[] keyAgreementPublicKey() {
        return keyAgreementPublicKey.clone();
    }
}
