package dev.outproc.migration.internal;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import org.bouncycastle.crypto.digests.SHA256Digest;
import org.bouncycastle.crypto.generators.HKDFBytesGenerator;
import org.bouncycastle.crypto.macs.HMac;
import org.bouncycastle.crypto.params.HKDFParameters;
import org.bouncycastle.crypto.params.KeyParameter;

/** Digest, MAC and key-derivation primitives with their domain-separation labels (spec section "Integrity"). */
public final class Crypto {
    /** Length of SHA-256 and HMAC-SHA256 outputs. */
    public static final int HASH_BYTES = 32;
    /** Label prefixed to the MAC input. */
    public static final byte[] MAC_LABEL = "outproc-migration-mac-v1".getBytes(StandardCharsets.US_ASCII);
    /** Label prefixed to the signature input. */
    public static final byte[] SIGNATURE_LABEL = "outproc-migration-sig-v1".getBytes(StandardCharsets.US_ASCII);
    /** HKDF info for the stream MAC key. */
    public static final byte[] MAC_KEY_INFO = "outproc-migration-mac-key-v1".getBytes(StandardCharsets.US_ASCII);

    private Crypto() {}

    /**
     * Returns a new SHA-256 digest. The JDK's implementation is used for bulk hashing because it is
     * intrinsified (SHA extensions) and accepts the stream buffers directly; it computes the same function as
     * BouncyCastle's SHA256Digest, which the MAC and HKDF use.
     *
     * @return a SHA-256 digest
     */
    public static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required by every JDK", e);
        }
    }

    /**
     * SHA-256 of the concatenation of the parts.
     *
     * @param parts byte arrays
     * @return 32-byte digest
     */
    public static byte[] sha256(byte[]... parts) {
        MessageDigest d = sha256();
        for (byte[] p : parts) {
            d.update(p);
        }
        return d.digest();
    }

    /**
     * HMAC-SHA256 of the concatenation of the parts.
     *
     * @param key MAC key
     * @param parts byte arrays
     * @return 32-byte tag
     */
    public static byte[] hmac(byte[] key, byte[]... parts) {
        HMac mac = new HMac(new SHA256Digest());
        mac.init(new KeyParameter(key));
        for (byte[] p : parts) {
            mac.update(p, 0, p.length);
        }
        byte[] out = new byte[HASH_BYTES];
        mac.doFinal(out, 0);
        return out;
    }

    /**
     * HKDF-SHA256 (RFC 5869).
     *
     * @param ikm input key material
     * @param salt salt
     * @param info context
     * @param length output length
     * @return derived bytes
     */
    public static byte[] hkdf(byte[] ikm, byte[] salt, byte[] info, int length) {
        HKDFBytesGenerator g = new HKDFBytesGenerator(new SHA256Digest());
        g.init(new HKDFParameters(ikm, salt, info));
        byte[] out = new byte[length];
        g.generateBytes(out, 0, length);
        return out;
    }
}
