package dev.outproc.migration.stream;

/** The stream violates the byte-level syntax of the format (bad magic, reserved bits set, bad type, over a limit). */
public class StreamFormatException extends MigrationStreamException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message what is wrong, with the offset and values involved
     */
    public StreamFormatException(String message) {
        super(message);
    }
}
