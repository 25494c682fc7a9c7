package dev.outproc.migration.stream;

/**
 * Hard limits that a reader enforces before it trusts a length from the stream (spec section "Limits").
 * A value over a limit is a {@link StreamFormatException}, never an allocation.
 */
public final class StreamLimits {
    /** Largest header, magic included. */
    public static final int MAX_HEADER_BYTES = 4096;
    /** Largest chunk of a section body. */
    public static final int MAX_CHUNK_BYTES = 16 * 1024 * 1024;
    /** Largest STRING value. */
    public static final int MAX_STRING_BYTES = 1024 * 1024;
    /** Largest BYTES value that {@link FieldReader#bytes()} copies onto the heap; larger ones go to a segment. */
    public static final int MAX_HEAP_BYTES = 16 * 1024 * 1024;
    /** Largest number of elements that an array accessor materializes on the heap. */
    public static final int MAX_HEAP_ARRAY_ELEMENTS = 1 << 20;
    /** Deepest nesting of records and arrays. */
    public static final int MAX_DEPTH = 32;
    /** Longest identifier (model id, format class, implementation id, vendor id), in UTF-8 bytes. */
    public static final int MAX_ID_BYTES = 256;

    private StreamLimits() {}
}
