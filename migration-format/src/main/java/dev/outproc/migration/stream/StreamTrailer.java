package dev.outproc.migration.stream;

import dev.outproc.migration.integrity.VerifyingKey;

/**
 * The verified trailer: what a reader checked at the end of a stream.
 *
 * @param sectionCount number of sections
 * @param transcript final transcript hash (null without digests)
 * @param macVerified whether a MAC was present and verified with the agreed key
 * @param macPresent whether the trailer carried a MAC
 * @param signer the key whose valid signature the trailer carried, or null
 * @param streamBytes total bytes of the stream
 */
public record StreamTrailer(int sectionCount, byte[] transcript, boolean macPresent, boolean macVerified,
        VerifyingKey signer, long streamBytes) {}
