package dev.outproc.vhost.message;

import java.io.IOException;

/**
 * A vhost-user message broke a syntax rule of the specification: a bad header, a payload of the wrong
 * size, a field that must be zero and is not, or the wrong number of fds.
 *
 * <p>{@link #connectionMustClose()} tells the caller what to do next. When it is {@code false}, the whole
 * message (header and payload) was consumed, the stream is still framed, and the caller may answer with
 * an error (a non-zero {@code REPLY_ACK}) and carry on. When it is {@code true} the reader stopped inside
 * the message (a header it cannot trust, or a size over the cap that it refused to read): the stream is
 * out of step and the connection must be closed.
 *
 * <p>Every fd that came with the offending message has been closed before this exception is thrown.
 */
public final class VhostUserProtocolException extends IOException {
    private static final long serialVersionUID = 1L;

    /** What rule the message broke. */
    public enum Reason {
        /** Bits 0–1 of the flags are not 1 (vhost-user.rst, Header: "currently 0x01"). */
        BAD_VERSION,
        /** A flag bit above bit 3 is set. */
        RESERVED_FLAGS,
        /** A request carries the REPLY flag, or a reply lacks it. */
        WRONG_REPLY_FLAG,
        /** A reply carries the NEED_REPLY flag. */
        NEED_REPLY_ON_REPLY,
        /** The header's size is over the reader's cap; the payload was not read. */
        PAYLOAD_TOO_LARGE,
        /** The request number is not one the specification defines for this direction. */
        UNKNOWN_REQUEST,
        /** The payload size is not one the request allows. */
        PAYLOAD_SIZE,
        /** More fds than the request may carry. */
        TOO_MANY_FDS,
        /** Fewer fds than the request must carry. */
        MISSING_FDS,
        /** A field holds a value the specification does not define. */
        INVALID_FIELD,
        /** A field the specification reserves (must be zero) is not zero. */
        RESERVED_FIELD,
        /** A reply answers a different request than the one awaited. */
        UNEXPECTED_REPLY
    }

    /** Request number when the header was decoded, else -1. */
    private final long request;
    private final long flags;
    private final long size;
    private final Reason reason;
    private final boolean connectionMustClose;

    /**
     * Creates the exception.
     *
     * @param reason the broken rule
     * @param request the header's request number (unsigned), or -1 when unknown
     * @param flags the header's flags (unsigned), or -1 when unknown
     * @param size the header's size (unsigned), or -1 when unknown
     * @param connectionMustClose whether the stream is out of step
     * @param detail what was wrong, with the offending values
     */
    public VhostUserProtocolException(Reason reason, long request, long flags, long size, boolean connectionMustClose,
                                      String detail) {
        super(reason + ": " + detail + " (request=" + request + ", flags=0x" + Long.toHexString(flags) + ", size=" + size
                + (connectionMustClose ? "; the stream is out of step, close the connection" : "") + ")");
        this.reason = reason;
        this.request = request;
        this.flags = flags;
        this.size = size;
        this.connectionMustClose = connectionMustClose;
    }

    /**
     * Creates an exception about a payload field, for a message whose framing is intact.
     *
     * @param reason the broken rule
     * @param detail what was wrong, with the offending values
     */
    public VhostUserProtocolException(Reason reason, String detail) {
        this(reason, -1, -1, -1, false, detail);
    }

    /** {@return the broken rule} */
    public Reason reason() {
        return reason;
    }

    /** {@return the header's request number, or -1 when the header could not be decoded} */
    public long request() {
        return request;
    }

    /** {@return the header's flags, or -1 when unknown} */
    public long flags() {
        return flags;
    }

    /** {@return the header's payload size, or -1 when unknown} */
    public long size() {
        return size;
    }

    /**
     * {@return whether the caller must close the connection} {@code false} means the whole message was
     * consumed and an error reply keeps the protocol in step.
     */
    public boolean connectionMustClose() {
        return connectionMustClose;
    }

    /**
     * Returns a copy of this exception that carries the header values (for errors found in a payload).
     *
     * @param headerRequest the header's request number
     * @param headerFlags the header's flags
     * @param headerSize the header's size
     * @return the copy
     */
    public VhostUserProtocolException withHeader(long headerRequest, long headerFlags, long headerSize) {
        String m = getMessage();
        int colon = m.indexOf(": ");
        int tail = m.lastIndexOf(" (request=");
        String detail = colon >= 0 && tail > colon ? m.substring(colon + 2, tail) : m;
        VhostUserProtocolException copy = new VhostUserProtocolException(reason, headerRequest, headerFlags, headerSize,
                connectionMustClose, detail);
        copy.setStackTrace(getStackTrace());
        return copy;
    }
}
