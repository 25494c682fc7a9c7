package dev.outproc.migration.model;

import java.util.List;

/**
 * One version of a state-format class: the sections it writes.
 *
 * @param version the format version
 * @param sections its sections
 */
public record FormatVersion(int version, List<SectionSchema> sections) {
    /** Canonical constructor: copies the list. */
    public FormatVersion {
        sections = List.copyOf(sections);
    }
}
