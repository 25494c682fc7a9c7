package dev.outproc.migration.handshake;

import java.io.IOException;

/** A handshake message is malformed, of the wrong kind, or does not belong to this handshake. */
public class HandshakeException extends IOException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message what is wrong, with the values involved
     */
    public HandshakeException(String message) {
        super(message);
    }

    /**
     * Creates the exception with a cause.
     *
     * @param message what is wrong
     * @param cause underlying failure
     */
    public HandshakeException(String message, Throwable cause) {
        super(message, cause);
    }
}
