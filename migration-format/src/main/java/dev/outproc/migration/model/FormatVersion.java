package dev.outproc.migration.model;

import java.util.List;
import java.util.Optional;

/**
 * One version of a state-format class: the sections it writes and the load-time checks a reader applies.
 *
 * @param version the format version
 * @param sections its sections
 * @param checks declarative checks across fields, evaluated after the stream verified and before the state is used
 */
public record FormatVersion(int version, List<SectionSchema> sections, List<StateCheck> checks) {
    /** Canonical constructor: copies the lists. */
    public FormatVersion {
        sections = List.copyOf(sections);
        checks = List.copyOf(checks);
    }

    /**
     * A format version without checks.
     *
     * @param version the format version
     * @param sections its sections
     */
    public FormatVersion(int version, List<SectionSchema> sections) {
        this(version, sections, List.of());
    }

    /**
     * Finds a section by id.
     *
     * @param id section id
     * @return the section's schema
     */
    public Optional<SectionSchema> section(int id) {
        return sections.stream().filter(s -> s.id() == id).findFirst();
    }
}
