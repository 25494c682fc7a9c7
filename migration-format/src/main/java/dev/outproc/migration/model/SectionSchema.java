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
 * @param fields its fields
 */
public record SectionSchema(int id, String name, int version, boolean mustUnderstand, boolean envelope,
        List<FieldSchema> fields) {
    /** Canonical constructor: copies the list. */
    public SectionSchema {
        fields = List.copyOf(fields);
    }
}
