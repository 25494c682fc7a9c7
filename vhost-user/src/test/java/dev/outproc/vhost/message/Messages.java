package dev.outproc.vhost.message;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** Test helper: builds raw messages (header plus payload) for the syntax checks. */
final class Messages {
    private Messages() {
    }

    /** {@return a zeroed message of {@code payloadSize} payload bytes with the given header} */
    static MemorySegment message(long request, long flags, int payloadSize) {
        MemorySegment m = Arena.ofAuto().allocate(VhostUserHeader.ENCODED_LENGTH + payloadSize);
        new VhostUserHeader.Encoder().wrap(m, 0).request(request).flags(flags).size(payloadSize);
        return m;
    }

    /** {@return a request message with version 1} */
    static MemorySegment request(VhostUserRequest request, int payloadSize) {
        return message(request.code(), VhostUserHeader.VERSION, payloadSize);
    }

    /** {@return a reply message with version 1 and REPLY} */
    static MemorySegment reply(VhostUserRequest request, int payloadSize) {
        return message(request.code(), VhostUserHeader.VERSION | VhostUserHeader.REPLY_FLAG, payloadSize);
    }

    /** {@return the stream on which {@code request} arrives} */
    static MessageStream requestStream(VhostUserRequest request) {
        return request.sentByBackend() ? MessageStream.BACKEND_REQUESTS : MessageStream.FRONTEND_REQUESTS;
    }

    /** {@return the stream on which replies to {@code request} arrive} */
    static MessageStream replyStream(VhostUserRequest request) {
        return request.sentByBackend() ? MessageStream.FRONTEND_REPLIES : MessageStream.BACKEND_REPLIES;
    }

    /** {@return all requests of both directions} */
    static VhostUserRequest[] allRequests() {
        VhostUserRequest[] all = new VhostUserRequest[FrontendRequest.values().length + BackendRequest.values().length];
        System.arraycopy(FrontendRequest.values(), 0, all, 0, FrontendRequest.values().length);
        System.arraycopy(BackendRequest.values(), 0, all, FrontendRequest.values().length, BackendRequest.values().length);
        return all;
    }

    /**
     * Fills a valid payload for a request (minimum size, fields that pass the checks) and returns its fd
     * count.
     */
    static int validRequestFds(VhostUserRequest request, MemorySegment message) {
        long o = VhostUserHeader.ENCODED_LENGTH;
        if (request.requestPayload() == PayloadType.IOTLB) {
            new IotlbMsg.Encoder().wrap(message, o).type(request.sentByBackend() ? IotlbMsg.TYPE_MISS : IotlbMsg.TYPE_UPDATE);
        }
        if (request == FrontendRequest.SET_VRING_KICK || request == FrontendRequest.SET_VRING_CALL
                || request == FrontendRequest.SET_VRING_ERR) {
            return 1;
        }
        if (request == BackendRequest.VRING_HOST_NOTIFIER_MSG) {
            return 1;
        }
        return request.minRequestFds();
    }
}
