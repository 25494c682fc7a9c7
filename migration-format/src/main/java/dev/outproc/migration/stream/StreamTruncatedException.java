package dev.outproc.migration.stream;

/** The stream ended before the format allows it to (before the trailer, or inside a field). */
public class StreamTruncatedException extends MigrationStreamException {
    private static final long serialVersionUID = 1L;

    private final long offset;

    /**
     * Creates the exception.
     *
     * @param offset stream offset at which more bytes were needed
     * @param needed how many more bytes were needed
     */
    public StreamTruncatedException(long offset, long needed) {
        super("stream truncated at offset " + offset + ": needed " + needed + " more byte(s)");
        this.offset = offset;
    }

    /**
     * Returns the offset at which the stream ended.
     *
     * @return the stream offset
     */
    public long offset() {
        return offset;
    }
}
