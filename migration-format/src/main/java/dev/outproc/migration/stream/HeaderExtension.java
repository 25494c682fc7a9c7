package dev.outproc.migration.stream;

/**
 * One entry of the structured header extension (stream-format.md §3.1): bytes a later revision of the format adds
 * to the header without a new stream version.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-------------------------------+---------------+---------------+
 * |  kind (u16 LE)                | entry version |  flags        |  0
 * +-------------------------------+---------------+---------------+
 * |  length L (u16 LE)            |  value (L bytes) ...          |  4
 * +-------------------------------+-------------------------------+
 * </pre>
 * Flags bit 0 is {@code CRITICAL}: a reader that does not know the kind, or does not know that version of it,
 * refuses the stream; it ignores a non-critical entry it does not know. Bits 1–7 are 0.
 *
 * @param kind what the entry is
 * @param version the entry's own version, at least 1
 * @param critical whether a reader that does not understand it must refuse the stream
 * @param value the entry's bytes
 */
public record HeaderExtension(int kind, int version, boolean critical, byte[] value) {
    /** Bytes before an entry's value. */
    public static final int ENTRY_HEADER_BYTES = 6;
    /** Flag bit of a critical entry. */
    public static final int FLAG_CRITICAL = 1;

    /** Canonical constructor: copies the value. */
    public HeaderExtension {
        value = value.clone();
    }

    @Override
    public byte[] value() {
        return value.clone();
    }
}
