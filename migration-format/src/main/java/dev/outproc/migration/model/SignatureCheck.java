package dev.outproc.migration.model;

import dev.outproc.migration.integrity.VerifyingKey;

/**
 * Result of checking who vouched for a model entry.
 *
 * @param status the verdict
 * @param signer signer name of the deciding signature, or null
 * @param key key of the deciding signature, or null
 */
public record SignatureCheck(Status status, String signer, VerifyingKey key) {
    /** Verdicts, from best to worst. */
    public enum Status {
        /** A valid signature by a trusted key. */
        TRUSTED,
        /** Valid signatures, none by a trusted key. */
        UNTRUSTED_SIGNER,
        /** No signature. */
        UNSIGNED,
        /** A signature does not verify: the entry was modified after signing. */
        INVALID
    }
}
