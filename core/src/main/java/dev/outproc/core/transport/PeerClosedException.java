package dev.outproc.core.transport;

/** The peer closed the connection; {@link #bytesRead()} tells whether it did so in the middle of a message. */
public final class PeerClosedException extends TransportException {
    private static final long serialVersionUID = 1L;

    private final long bytesRead;

    /**
     * Creates the exception.
     *
     * @param bytesRead how many bytes of the expected message had arrived
     * @param expected how many were expected
     */
    public PeerClosedException(long bytesRead, long expected) {
        super(bytesRead == 0 ? "peer closed the connection"
                : "peer closed the connection in the middle of a message, got " + bytesRead + " of " + expected + " bytes");
        this.bytesRead = bytesRead;
    }

    /** {@return how many bytes of the expected message had arrived (0: a clean close between messages)} */
    public long bytesRead() {
        return bytesRead;
    }
}
