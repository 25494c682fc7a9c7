package dev.outproc.migration.integrity;

import java.security.SecureRandom;
import org.bouncycastle.crypto.params.Ed25519PrivateKeyParameters;
import org.bouncycastle.crypto.signers.Ed25519Signer;

/** An Ed25519 private key (RFC 8032): signs registry entries and stream trailers. Signatures are deterministic. */
public final class SigningKey {
    private final Ed25519PrivateKeyParameters key;

    private SigningKey(Ed25519PrivateKeyParameters key) {
        this.key = key;
    }

    /**
     * Creates a key from a 32-byte seed (the RFC 8032 private key).
     *
     * @param seed 32 bytes
     * @return the key
     */
    public static SigningKey fromSeed(byte[] seed) {
        if (seed.length != 32) {
            throw new IllegalArgumentException("Ed25519 seed must be 32 bytes, length=" + seed.length);
        }
        return new SigningKey(new Ed25519PrivateKeyParameters(seed, 0));
    }

    /**
     * Generates a key.
     *
     * @param random source of randomness
     * @return a new key
     */
    public static SigningKey generate(SecureRandom random) {
        return new SigningKey(new Ed25519PrivateKeyParameters(random));
    }

    /** @return the matching public key */
    public VerifyingKey verifyingKey() {
        return VerifyingKey.of(key.generatePublicKey().getEncoded());
    }

    /**
     * Signs a message.
     *
     * @param message bytes to sign
     * @return 64-byte signature
     */
    public byte[] sign(byte[] message) {
        Ed25519Signer signer = new Ed25519Signer();
        signer.init(true, key);
        signer.update(message, 0, message.length);
        return signer.generateSignature();
    }
}
