package dev.outproc.vhost.message;

/**
 * A request type of either direction with the metadata the syntax layer needs: payloads, fd counts,
 * whether a reply always follows, and the features that gate it.
 *
 * <p>Replies: a request without an explicit reply ({@link #alwaysReplies()} false) gets one only when
 * the sender sets NEED_REPLY (REPLY_ACK negotiated), and that reply is a {@code u64} status
 * (vhost-user.rst, "VHOST_USER_PROTOCOL_F_REPLY_ACK"); {@link #replyPayload()} is then
 * {@link PayloadType#U64}.
 */
public sealed interface VhostUserRequest permits FrontendRequest, BackendRequest {
    /** {@return the request's syntax rules} */
    RequestRules rules();

    /** {@return the request number on the wire} */
    int code();

    /** {@return the name the specification uses, e.g. {@code VHOST_USER_GET_FEATURES}} */
    String specName();

    /** {@return the request's payload kind} */
    default PayloadType requestPayload() {
        return rules().requestPayload();
    }

    /** {@return the fewest fds the request may carry} */
    default int minRequestFds() {
        return rules().minRequestFds();
    }

    /** {@return the most fds the request may carry} */
    default int maxRequestFds() {
        return rules().maxRequestFds();
    }

    /**
     * {@return the payload kind of the reply} For requests without an explicit reply this is
     * {@link PayloadType#U64}, the REPLY_ACK status.
     */
    default PayloadType replyPayload() {
        return rules().replyPayload();
    }

    /** {@return the fewest fds the reply may carry} */
    default int minReplyFds() {
        return rules().minReplyFds();
    }

    /** {@return the most fds the reply may carry} */
    default int maxReplyFds() {
        return rules().maxReplyFds();
    }

    /**
     * {@return whether the receiver always answers, whatever NEED_REPLY says} (vhost-user.rst,
     * "Communication", and the request's own text)
     */
    default boolean alwaysReplies() {
        return rules().alwaysReplies();
    }

    /**
     * {@return whether a REPLY_ACK {@code u64} status is valid in place of the explicit reply} (true for
     * SET_MEM_TABLE and ADD_MEM_REG, whose explicit reply exists only in postcopy mode)
     */
    default boolean ackReplyAllowed() {
        return rules().ackReplyAllowed();
    }

    /** {@return the protocol feature that must be negotiated before this request, or {@code null}} */
    default ProtocolFeature protocolGate() {
        return rules().protocolGate();
    }

    /**
     * {@return the bit of the GET/SET_FEATURES word that must be negotiated before this request, or 0}
     * A {@link dev.outproc.core.virtio.VirtioFeature} or {@link VhostUserFeature} mask.
     */
    default long featureGateMask() {
        return rules().featureGateMask();
    }

    /** {@return whether the back-end sends this request (on the back-end channel)} */
    boolean sentByBackend();
}
