package dev.outproc.migration.model;

import java.util.List;

/**
 * A field of a section (or of a record) in a format version's schema (registry-format.md §3.3).
 *
 * @param tag field tag, 1 … 65535; tags from {@link #MUST_UNDERSTAND_TAG} up are optional subsections that a reader
 *        which does not know them refuses instead of skipping (stream-format.md §5.4)
 * @param name field name
 * @param type wire type name: {@code bool}, {@code int8}, {@code int16}, {@code int32}, {@code int64}, {@code bytes},
 *        {@code string}, {@code array}, {@code record}
 * @param signed for an integer type, or an array of one: whether the value is two's complement (false: unsigned)
 * @param element for an array: the element type name (any type but {@code array}); otherwise null
 * @param fields for a record, or an array of records: the nested fields; otherwise empty
 * @param defaultValue canonical text of the default used when the field is absent ({@code true}/{@code false},
 *        decimal, lower-case hex for bytes, the string itself, {@code []} for an empty array), or null when the
 *        field is required
 */
public record FieldSchema(int tag, String name, String type, boolean signed, String element, List<FieldSchema> fields,
        String defaultValue) {
    /** First tag of an optional subsection: sent only when needed, refused by a reader that does not know it. */
    public static final int MUST_UNDERSTAND_TAG = dev.outproc.migration.stream.StreamLayout.MUST_UNDERSTAND_TAG;

    /** Canonical constructor: copies the list. */
    public FieldSchema {
        fields = List.copyOf(fields);
    }

    /**
     * A scalar field (unsigned if an integer).
     *
     * @param tag field tag
     * @param name field name
     * @param type wire type name
     * @param defaultValue canonical default text, or null
     */
    public FieldSchema(int tag, String name, String type, String defaultValue) {
        this(tag, name, type, false, null, List.of(), defaultValue);
    }

    /** @return whether a reader that does not know this tag must refuse the stream */
    public boolean mustUnderstand() {
        return tag >= MUST_UNDERSTAND_TAG;
    }

    /** @return whether the field is an integer (or an array of integers) */
    public boolean isInteger() {
        String t = type.equals("array") ? element : type;
        return t.startsWith("int");
    }

    /** @return a short text of the wire shape, e.g. {@code array<record{…}>}, for diffs and messages */
    public String shape() {
        String inner = fields.isEmpty() ? "" : "{" + String.join(",", fields.stream().map(f -> f.tag() + ":" + f.shape()).toList()) + "}";
        String scalar = signed ? "signed " : "";
        return switch (type) {
            case "array" -> "array<" + (isInteger() && signed ? "signed " : "") + element + inner + ">";
            case "record" -> "record" + inner;
            default -> scalar + type;
        };
    }
}
