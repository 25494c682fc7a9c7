package dev.outproc.vhost.message;

/**
 * Which messages a reader expects on a socket. The main socket carries front-end requests and the
 * back-end's replies; the back-end channel (SET_BACKEND_REQ_FD) carries back-end requests and the
 * front-end's replies. Request numbers mean different things on the two sockets, and a reply must carry
 * the REPLY flag while a request must not.
 */
public enum MessageStream {
    /** What a back-end reads on the main socket: {@link FrontendRequest}s. */
    FRONTEND_REQUESTS(false, false),
    /** What a front-end reads on the main socket: replies to {@link FrontendRequest}s. */
    BACKEND_REPLIES(true, false),
    /** What a front-end reads on the back-end channel: {@link BackendRequest}s. */
    BACKEND_REQUESTS(false, true),
    /** What a back-end reads on the back-end channel: replies to {@link BackendRequest}s. */
    FRONTEND_REPLIES(true, true);

    private final boolean replies;
    private final boolean backendChannel;
    private final int maxFds;

    MessageStream(boolean replies, boolean backendChannel) {
        this.replies = replies;
        this.backendChannel = backendChannel;
        int most = 0;
        VhostUserRequest[] requests = backendChannel ? BackendRequest.values() : FrontendRequest.values();
        for (VhostUserRequest r : requests) {
            most = Math.max(most, replies ? r.maxReplyFds() : r.maxRequestFds());
        }
        this.maxFds = most;
    }

    /** {@return whether the messages are replies} */
    public boolean replies() {
        return replies;
    }

    /** {@return whether this is the back-end channel} */
    public boolean backendChannel() {
        return backendChannel;
    }

    /** {@return the most fds any message of this stream may carry} */
    public int maxFds() {
        return maxFds;
    }

    /**
     * {@return the request with that number on this stream's socket, or {@code null}}
     *
     * @param code the header's request number
     */
    public VhostUserRequest lookup(long code) {
        return backendChannel ? BackendRequest.ofCode(code) : FrontendRequest.ofCode(code);
    }
}
