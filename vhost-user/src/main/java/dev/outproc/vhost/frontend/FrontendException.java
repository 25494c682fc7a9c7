package dev.outproc.vhost.frontend;

import java.io.IOException;

/** A back-end refused a request (non-zero REPLY_ACK status or an empty reply where data was due). */
public final class FrontendException extends IOException {
    private static final long serialVersionUID = 1L;

    private final long status;

    /**
     * Creates the exception.
     *
     * @param status the status the back-end sent (0 when it sent none)
     * @param message what was refused
     */
    public FrontendException(long status, String message) {
        super(message);
        this.status = status;
    }

    /** {@return the back-end's status} */
    public long status() {
        return status;
    }
}
