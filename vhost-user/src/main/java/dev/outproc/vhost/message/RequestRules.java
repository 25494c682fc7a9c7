package dev.outproc.vhost.message;

/**
 * What the syntax layer knows of one request type, whichever its direction: payloads, fd counts,
 * whether a reply always follows, and the features that gate it. {@link FrontendRequest} and
 * {@link BackendRequest} constants each carry one.
 *
 * @param requestPayload the request's payload kind
 * @param minRequestFds the fewest fds the request may carry
 * @param maxRequestFds the most fds the request may carry
 * @param replyPayload the reply's payload kind ({@link PayloadType#U64}, the REPLY_ACK status, when the
 *        request has no explicit reply)
 * @param minReplyFds the fewest fds the reply may carry
 * @param maxReplyFds the most fds the reply may carry
 * @param alwaysReplies whether the receiver always answers, whatever NEED_REPLY says
 * @param ackReplyAllowed whether a REPLY_ACK status is valid in place of the explicit reply
 * @param protocolGate the protocol feature that must be negotiated first, or {@code null}
 * @param featureGateMask the feature bit (a virtio or vhost-user feature word mask) that must be
 *        negotiated first, or 0
 */
public record RequestRules(PayloadType requestPayload, int minRequestFds, int maxRequestFds, PayloadType replyPayload,
                           int minReplyFds, int maxReplyFds, boolean alwaysReplies, boolean ackReplyAllowed,
                           ProtocolFeature protocolGate, long featureGateMask) {
}
