package dev.outproc.core.transport;

/**
 * A write waited longer than the channel's write timeout ({@code SO_SNDTIMEO}) for the peer to make room: the
 * peer does not read. Part of the message may have gone out, so the connection is out of step.
 */
public final class WriteTimeoutException extends TransportException {
    private static final long serialVersionUID = 1L;
    private final long sentBytes;
    private final long messageBytes;

    /**
     * Creates the exception.
     *
     * @param sentBytes bytes of the message already sent
     * @param messageBytes the message's size
     */
    public WriteTimeoutException(long sentBytes, long messageBytes) {
        super("write timed out after " + sentBytes + " of " + messageBytes + " bytes: the peer does not read");
        this.sentBytes = sentBytes;
        this.messageBytes = messageBytes;
    }

    /** {@return bytes of the message already sent} */
    public long sentBytes() {
        return sentBytes;
    }

    /** {@return the message's size} */
    public long messageBytes() {
        return messageBytes;
    }
}
