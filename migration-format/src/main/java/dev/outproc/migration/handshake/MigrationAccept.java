package dev.outproc.migration.handshake;

import java.util.List;

/**
 * The destination accepts: which version to write, a fresh destination nonce, what protection the stream must carry,
 * and, when a MAC was asked for or is required, its X25519 public key.
 *
 * @param nonce the offer's nonce
 * @param formatVersion the version the source must write
 * @param modelId the model
 * @param formatClass the format class
 * @param destinationImplementation the destination's implementation id
 * @param keyAgreementPublicKey the destination's X25519 public key, or empty
 * @param destinationNonce 32 fresh random bytes of this accept: they enter the handshake hash, so a stream recorded
 *        for an earlier accept never verifies against this one (stream-format.md §9.2)
 * @param requirements what the destination requires of the stream: {@link #REQUIRE_MAC}, {@link #REQUIRE_SIGNATURE}
 * @param signers the Ed25519 public keys (32 bytes each) of which one must sign the stream, when a signature is
 *        required; empty means any key (the signature then only proves integrity)
 */
public record MigrationAccept(byte[] nonce, int formatVersion, String modelId, String formatClass,
        String destinationImplementation, byte[] keyAgreementPublicKey, byte[] destinationNonce, int requirements,
        List<byte[]> signers) implements MigrationAnswer {
    /** Requirement bit: the stream carries a MAC keyed by this handshake. */
    public static final int REQUIRE_MAC = 1;
    /** Requirement bit: the stream's trailer is signed (by one of {@link #signers()}, if any are listed). */
    public static final int REQUIRE_SIGNATURE = 2;
    /** Requirement bits this version defines. */
    public static final int KNOWN_REQUIREMENTS = REQUIRE_MAC | REQUIRE_SIGNATURE;
    /** Most signer keys an accept lists. */
    public static final int MAX_SIGNERS = 16;

    /** Canonical constructor: copies the arrays. */
    public MigrationAccept {
        nonce = nonce.clone();
        keyAgreementPublicKey = keyAgreementPublicKey.clone();
        destinationNonce = destinationNonce.clone();
        signers = signers.stream().map(byte[]::clone).toList();
    }

    @Override
    public byte[] nonce() {
        return nonce.clone();
    }

    @Override
    public byte[] keyAgreementPublicKey() {
        return keyAgreementPublicKey.clone();
    }

    @Override
    public byte[] destinationNonce() {
        return destinationNonce.clone();
    }

    @Override
    public List<byte[]> signers() {
        return signers.stream().map(byte[]::clone).toList();
    }

    /** @return whether the destination requires a MAC */
    public boolean requiresMac() {
        return (requirements & REQUIRE_MAC) != 0;
    }

    /** @return whether the destination requires a signed trailer */
    public boolean requiresSignature() {
        return (requirements & REQUIRE_SIGNATURE) != 0;
    }
}
