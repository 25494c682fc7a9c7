package dev.outproc.migration.model;

import java.util.List;

/**
 * An implementation of a model and which versions of a format class it reads and writes.
 *
 * @param id domain-rooted implementation id
 * @param vendor who ships it
 * @param formatClass the format class it uses
 * @param readVersions versions it can read
 * @param writeVersions versions it can write
 */
public record Implementation(String id, String vendor, String formatClass, List<Integer> readVersions,
        List<Integer> writeVersions) {
    /** Canonical constructor: copies the lists. */
    public Implementation {
        readVersions = List.copyOf(readVersions);
        writeVersions = List.copyOf(writeVersions);
    }
}
