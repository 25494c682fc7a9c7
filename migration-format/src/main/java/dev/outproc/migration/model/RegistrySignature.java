package dev.outproc.migration.model;

import dev.outproc.migration.integrity.VerifyingKey;

/**
 * A signature over one model entry's canonical form (see {@link Registry#canonicalBytes(DeviceModel)}).
 *
 * @param modelId the signed model
 * @param signer who vouches (a domain or organisation name; informative, trust comes from the key)
 * @param key the signer's Ed25519 public key
 * @param signature the Ed25519 signature
 */
public record RegistrySignature(String modelId, String signer, VerifyingKey key, byte[] signature) {
    /** Canonical constructor: copies the signature. */
    public RegistrySignature {
        signature = signature.clone();
    }

    @Override
    public byte[] signature() {
        return signature.clone();
    }
}
