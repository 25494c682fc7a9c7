package dev.outproc.migration.model;

import java.util.List;

/**
 * A section in a format version's schema.
 *
 * @param id section id
 * @param name section name
 * @param version section version written in this format version
 * @param mustUnderstand whether readers must understand it
 * @param envelope whether it is a vendor envelope
 * @param optional whether a stream of this format version may leave the section out (registry-format.md §3.3);
 *        every other listed section is required, and a reader refuses a stream without it
 * @param fields its fields
 */
public record SectionSchema(int id, String name, int version, boolean mustUnderstand, boolean envelope, boolean optional,
        List<FieldSchema> fields) {
    /** Canonical constructor: copies the list. */
    public SectionSchema {
        fields = List.copyOf(fields);
    }

    /**
     * A required section.
     *
     * @param id section id
     * @param name section name
     * @param version section version
     * @param mustUnderstand whether readers must understand it
     * @param envelope whether it is a vendor envelope
     * @param fields its fields
     */
    public SectionSchema(int id, String name, int version, boolean mustUnderstand, boolean envelope, List<FieldSchema> fields) {
        this(id, name, version, mustUnderstand, envelope, false, fields);
    }
}
