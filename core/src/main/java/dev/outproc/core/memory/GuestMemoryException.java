package dev.outproc.core.memory;

import java.io.IOException;

/**
 * An address or range that guest memory does not hold, or a region table that is not valid.
 * The message carries the offending values in hexadecimal.
 */
public final class GuestMemoryException extends IOException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message what is wrong, with the values involved
     */
    public GuestMemoryException(String message) {
        super(message);
    }
}
