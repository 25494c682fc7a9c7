package dev.outproc.migration.model;

/**
 * A field of a section in a format version's schema.
 *
 * @param tag field tag
 * @param name field name
 * @param type wire type name ({@code bool}, {@code int8} ... {@code record}, lower-case FieldType names)
 * @param defaultValue default used when the field is absent, or null when the field is required
 */
public record FieldSchema(int tag, String name, String type, String defaultValue) {}
