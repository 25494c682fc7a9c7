package dev.outproc.migration.model;

import java.util.List;
import java.util.Optional;

/**
 * A state-format class: a documented layout of a model's state that several implementations share; two
 * implementations of one class can migrate to each other.
 *
 * @param id domain-rooted id, e.g. {@code virtio-spec.org/pci/virtio-blk/state}
 * @param description what it covers
 * @param versions its versions
 */
public record FormatClass(String id, String description, List<FormatVersion> versions) {
    /** Canonical constructor: copies the list. */
    public FormatClass {
        versions = List.copyOf(versions);
    }

    /**
     * Finds a version.
     *
     * @param v version number
     * @return the version, if defined
     */
    public Optional<FormatVersion> version(int v) {
        return versions.stream().filter(f -> f.version() == v).findFirst();
    }
}
