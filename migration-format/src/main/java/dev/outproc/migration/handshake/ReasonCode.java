package dev.outproc.migration.handshake;

/** Why a destination refuses a migration (the wire form is the constant name). */
public enum ReasonCode {
    /** The registry does not know the model. */
    UNKNOWN_MODEL,
    /** Source and destination are different models. */
    MODEL_MISMATCH,
    /** Source and destination hold different definitions (canonical digests) of the model. */
    MODEL_DEFINITION_MISMATCH,
    /** A model entry's signature does not verify (it was modified after signing). */
    SIGNATURE_INVALID,
    /** The model entry is not signed by a trusted key, and the destination requires one. */
    UNTRUSTED_MODEL,
    /** A descriptor names a parameter the model does not define. */
    UNKNOWN_PARAMETER,
    /** A required parameter is missing. */
    PARAMETER_MISSING,
    /** A parameter value is not of the parameter's type. */
    PARAMETER_TYPE,
    /** A parameter value is outside the allowed values or range. */
    PARAMETER_NOT_ALLOWED,
    /** A guest-visible parameter differs between source and destination. */
    PARAMETER_MISMATCH,
    /** A constraint across parameters is violated. */
    CONSTRAINT_VIOLATED,
    /** The model does not define the format class. */
    UNKNOWN_FORMAT_CLASS,
    /** Source and destination use different format classes. */
    FORMAT_CLASS_MISMATCH,
    /** A descriptor claims a format version the format class does not define. */
    UNKNOWN_FORMAT_VERSION,
    /** No version that the source can write and the destination can read. */
    NO_COMMON_VERSION,
    /** The destination requires a MAC and the source did not offer key material. */
    MAC_REQUIRED,
    /** The offer could not be decoded. */
    MALFORMED_OFFER,
    /** The destination pins stream signers and none of them is bound to the source's implementation in its registry. */
    SIGNER_NOT_BOUND,
    /** A side's implementation is listed in the registry with another format class or fewer versions than it claims. */
    IMPLEMENTATION_MISMATCH,
    /** A reason code this version does not know (from a newer peer). */
    OTHER;

    /**
     * Maps a wire name to a code.
     *
     * @param name wire name
     * @return the code, or {@link #OTHER}
     */
    public static ReasonCode ofWire(String name) {
        for (ReasonCode c : values()) {
            if (c.name().equals(name)) {
                return c;
            }
        }
        return OTHER;
    }
}
