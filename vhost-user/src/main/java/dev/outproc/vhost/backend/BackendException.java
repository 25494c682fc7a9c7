package dev.outproc.vhost.backend;

import dev.outproc.core.fd.Errno;

import java.io.IOException;

/**
 * A request the back-end refuses for what it means (the features negotiated, the connection's state,
 * values out of range), as opposed to a malformed message. With REPLY_ACK the front-end receives
 * {@link #status()}; without it the connection closes, since the protocol has no other error path.
 */
public final class BackendException extends IOException {
    private static final long serialVersionUID = 1L;

    /** Status for a request the back-end does not support. */
    public static final long UNSUPPORTED = Errno.ENOTSUP;
    /** Status for an invalid request. */
    public static final long INVALID = Errno.EINVAL;
    /** Status for an I/O failure while serving a request. */
    public static final long IO_ERROR = Errno.EIO;

    private final long status;

    /**
     * Creates the exception.
     *
     * @param status the non-zero status sent in the REPLY_ACK answer (an errno value)
     * @param message what is wrong, with the values involved
     */
    public BackendException(long status, String message) {
        super(message);
        this.status = status;
    }

    /**
     * Creates the exception with a cause.
     *
     * @param status the non-zero status sent in the REPLY_ACK answer
     * @param message what is wrong
     * @param cause the underlying failure
     */
    public BackendException(long status, String message, Throwable cause) {
        super(message, cause);
        this.status = status;
    }

    /** {@return the status sent to the front-end} */
    public long status() {
        return status;
    }
}
