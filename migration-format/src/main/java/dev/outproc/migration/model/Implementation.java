package dev.outproc.migration.model;

import dev.outproc.migration.integrity.VerifyingKey;
import java.util.List;

/**
 * An implementation of a model and which versions of a format class it reads and writes.
 *
 * @param id domain-rooted implementation id
 * @param vendor who ships it
 * @param formatClass the format class it uses
 * @param readVersions versions it can read
 * @param writeVersions versions it can write
 * @param signers Ed25519 keys that sign this implementation's streams (registry-format.md §3.6): when the list is not
 *        empty, a destination requires a stream from this implementation to be signed by one of them
 */
public record Implementation(String id, String vendor, String formatClass, List<Integer> readVersions,
        List<Integer> writeVersions, List<VerifyingKey> signers) {
    /** Canonical constructor: copies the lists. */
    public Implementation {
        readVersions = List.copyOf(readVersions);
        writeVersions = List.copyOf(writeVersions);
        signers = List.copyOf(signers);
    }

    /**
     * An implementation without bound signer keys.
     *
     * @param id domain-rooted implementation id
     * @param vendor who ships it
     * @param formatClass the format class it uses
     * @param readVersions versions it can read
     * @param writeVersions versions it can write
     */
    public Implementation(String id, String vendor, String formatClass, List<Integer> readVersions, List<Integer> writeVersions) {
        this(id, vendor, formatClass, readVersions, writeVersions, List.of());
    }
}
