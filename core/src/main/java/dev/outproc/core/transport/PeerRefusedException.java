package dev.outproc.core.transport;

/** A peer connected whose credentials the {@link PeerAllowList} does not admit; its connection is closed unread. */
public final class PeerRefusedException extends TransportException {
    private static final long serialVersionUID = 1L;

    private final transient PeerCredentials peer;

    /**
     * Creates the exception.
     *
     * @param peer the refused peer's credentials
     * @param allowList the list it was checked against
     */
    public PeerRefusedException(PeerCredentials peer, PeerAllowList allowList) {
        super("peer refused: pid=" + peer.pid() + ", uid=" + peer.uid() + ", gid=" + peer.gid() + " is not in " + allowList);
        this.peer = peer;
    }

    /** {@return the refused peer's credentials} */
    public PeerCredentials peer() {
        return peer;
    }
}
