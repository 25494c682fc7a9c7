package dev.outproc.core.transport;

/**
 * A read waited longer than the channel's read timeout ({@code SO_RCVTIMEO}) for the peer's bytes. When part of
 * a message had arrived, the connection is out of step.
 */
public final class ReadTimeoutException extends TransportException {
    private static final long serialVersionUID = 1L;
    private final long receivedBytes;
    private final long wantedBytes;

    /**
     * Creates the exception.
     *
     * @param receivedBytes bytes of the read that had arrived
     * @param wantedBytes bytes the read asked for
     */
    public ReadTimeoutException(long receivedBytes, long wantedBytes) {
        super("read timed out after " + receivedBytes + " of " + wantedBytes + " bytes");
        this.receivedBytes = receivedBytes;
        this.wantedBytes = wantedBytes;
    }

    /** {@return bytes of the read that had arrived} */
    public long receivedBytes() {
        return receivedBytes;
    }

    /** {@return bytes the read asked for} */
    public long wantedBytes() {
        return wantedBytes;
    }
}
