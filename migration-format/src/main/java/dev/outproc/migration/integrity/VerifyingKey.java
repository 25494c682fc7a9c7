package dev.outproc.migration.integrity;

import java.security.MessageDigest;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import org.bouncycastle.crypto.params.Ed25519PublicKeyParameters;
import org.bouncycastle.crypto.signers.Ed25519Signer;

/** An Ed25519 public key (RFC 8032, 32 bytes): who vouched for a registry entry or signed a stream trailer. */
public final class VerifyingKey {
    /** Encoded length of the key. */
    public static final int LENGTH = 32;
    /** Length of an Ed25519 signature. */
    public static final int SIGNATURE_LENGTH = 64;

    private final byte[] encoded;

    private VerifyingKey(byte[] encoded) {
        this.encoded = encoded;
    }

    /**
     * Wraps an encoded key.
     *
     * @param encoded 32 bytes
     * @return the key
     * @throws IllegalArgumentException if the length is not 32
     */
    public static VerifyingKey of(byte[] encoded) {
        if (encoded.length != LENGTH) {
            throw new IllegalArgumentException("Ed25519 public key must be 32 bytes, length=" + encoded.length);
        }
        return new VerifyingKey(encoded.clone());
    }

    /**
     * Decodes a key from base64.
     *
     * @param base64 standard base64 of 32 bytes
     * @return the key
     * @throws IllegalArgumentException if not base64 of 32 bytes
     */
    public static VerifyingKey fromBase64(String base64) {
        return of(Base64.getDecoder().decode(base64));
    }

    /** @return a copy of the 32 encoded bytes */
    public byte[] encoded() {
        return encoded.clone();
    }

    /** @return standard base64 of the key */
    public String toBase64() {
        return Base64.getEncoder().encodeToString(encoded);
    }

    /** @return first 8 bytes of the key in hex, for messages */
    public String fingerprint() {
        return HexFormat.of().formatHex(encoded, 0, 8);
    }

    /**
     * Verifies a signature; a malformed key or signature verifies as false, never throws.
     *
     * @param message signed bytes
     * @param signature 64 bytes
     * @return whether the signature is valid for this key
     */
    public boolean verify(byte[] message, byte[] signature) {
        if (signature.length != SIGNATURE_LENGTH) {
            return false;
        }
        try {
            Ed25519Signer verifier = new Ed25519Signer();
            verifier.init(false, new Ed25519PublicKeyParameters(encoded, 0));
            verifier.update(message, 0, message.length);
            return verifier.verifySignature(signature);
        } catch (IllegalArgumentException | IllegalStateException e) {
            return false;
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof VerifyingKey k && MessageDigest.isEqual(encoded, k.encoded);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(encoded);
    }

    @Override
    public String toString() {
        return "Ed25519:" + fingerprint();
    }
}
