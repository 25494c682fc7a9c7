package dev.outproc.migration.stream;

/**
 * The decoded stream header.
 *
 * @param streamVersion stream format version (1)
 * @param flags header flags ({@link StreamLayout#FLAG_DIGESTS} ...)
 * @param headerLength header length in bytes
 * @param formatVersion version of the format class the sections follow
 * @param nonce the source's 32-byte nonce from the handshake
 * @param handshakeHash SHA-256 of the handshake messages
 * @param modelId device model id
 * @param formatClass state-format class id
 * @param implementationId informative id of the writer
 * @param extensions the non-critical header extension entries (stream-format.md §3.1), in stream order; this
 *        version of the format defines no kind, so a critical entry is always refused
 */
public record StreamHeader(int streamVersion, int flags, int headerLength, int formatVersion, byte[] nonce,
        byte[] handshakeHash, String modelId, String formatClass, String implementationId, java.util.List<HeaderExtension> extensions) {
    /** Canonical constructor: copies the list. */
    public StreamHeader {
        extensions = java.util.List.copyOf(extensions);
    }

    /** @return whether digests are present */
    public boolean hasDigests() {
        return (flags & StreamLayout.FLAG_DIGESTS) != 0;
    }

    /** @return whether the trailer carries a MAC */
    public boolean hasMac() {
        return (flags & StreamLayout.FLAG_MAC) != 0;
    }

    /** @return whether the trailer carries a signature */
    public boolean hasSignature() {
        return (flags & StreamLayout.FLAG_SIGNATURE) != 0;
    }
}
