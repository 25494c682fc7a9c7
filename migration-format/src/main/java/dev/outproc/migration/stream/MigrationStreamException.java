package dev.outproc.migration.stream;

import java.io.IOException;

/**
 * A device-state stream was rejected: it is malformed, truncated, fails an integrity check, or holds a
 * section the reader cannot understand. The message names the offending values and the stream offset.
 *
 * <p>Every failure the reader detects in untrusted input is one of the subclasses; a device must not load
 * any state from a stream whose reader threw one.
 */
public class MigrationStreamException extends IOException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message what is wrong, with the values involved
     */
    public MigrationStreamException(String message) {
        super(message);
    }

    /**
     * Creates the exception with a cause.
     *
     * @param message what is wrong
     * @param cause the underlying failure
     */
    public MigrationStreamException(String message, Throwable cause) {
        super(message, cause);
    }
}
