package dev.outproc.core.transport;

import java.io.IOException;

/** The peer closed the connection, sent fewer bytes than a message needs, or sent fds it may not send. */
public class TransportException extends IOException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message what happened, with the values involved
     */
    public TransportException(String message) {
        super(message);
    }

    /**
     * Creates the exception with a cause.
     *
     * @param message what happened
     * @param cause the underlying failure
     */
    public TransportException(String message, Throwable cause) {
        super(message, cause);
    }
}
