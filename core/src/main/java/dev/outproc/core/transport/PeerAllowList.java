package dev.outproc.core.transport;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Set;

/**
 * Which local processes may talk to a back-end, by the credentials the kernel reports for the other end
 * of a Unix socket ({@code SO_PEERCRED}: the uid, gid and pid the peer had when it connected; the peer
 * cannot forge them). A peer is admitted when its uid is in {@link #uids()} or its gid is in
 * {@link #gids()}; {@link #anyone()} admits every peer the socket file's mode lets connect.
 *
 * <p>The check belongs before the first byte is read: {@link UnixListener#accept()} applies the list it
 * was given and closes, with a log line, every connection it refuses; {@link #check(MessageChannel)}
 * does the same for a socket adopted by other means.
 *
 * @param uids the admitted user ids
 * @param gids the admitted group ids (the peer's primary group)
 * @param admitsAnyone whether the lists are ignored
 */
public record PeerAllowList(Set<Long> uids, Set<Long> gids, boolean admitsAnyone) {
    private static final PeerAllowList ANYONE = new PeerAllowList(Set.of(), Set.of(), true);

    /** Copies the sets. */
    public PeerAllowList {
        uids = Set.copyOf(uids);
        gids = Set.copyOf(gids);
    }

    /** {@return a list that admits every peer (access rests on the socket file's mode alone)} */
    public static PeerAllowList anyone() {
        return ANYONE;
    }

    /**
     * {@return a list that admits the given users and groups only}
     *
     * @param uids admitted user ids
     * @param gids admitted group ids
     */
    public static PeerAllowList of(Set<Long> uids, Set<Long> gids) {
        return new PeerAllowList(uids, gids, false);
    }

    /**
     * {@return a list that admits processes of the user this process runs as}
     *
     * @throws IOException when {@code /proc/self} cannot be read
     */
    public static PeerAllowList sameUser() throws IOException {
        Object uid = Files.getAttribute(Path.of("/proc/self"), "unix:uid", LinkOption.NOFOLLOW_LINKS);
        return of(Set.of(((Integer) uid).longValue()), Set.of());
    }

    /**
     * {@return whether {@code peer} is admitted}
     *
     * @param peer the peer's credentials
     */
    public boolean admits(PeerCredentials peer) {
        return admitsAnyone || uids.contains(peer.uid()) || gids.contains(peer.gid());
    }

    /**
     * Reads the peer's credentials of a connected channel and refuses a peer that is not admitted.
     *
     * @param channel the connected channel (nothing is read from it)
     * @return the peer's credentials
     * @throws PeerRefusedException when the peer is not admitted (the caller closes the channel)
     * @throws IOException when the credentials cannot be read
     */
    public PeerCredentials check(MessageChannel channel) throws IOException {
        PeerCredentials peer = channel.peerCredentials();
        if (!admits(peer)) {
            throw new PeerRefusedException(peer, this);
        }
        return peer;
    }

    @Override
    public String toString() {
        return admitsAnyone ? "PeerAllowList[anyone]" : "PeerAllowList[uids=" + uids + ", gids=" + gids + "]";
    }
}
