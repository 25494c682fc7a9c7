package dev.outproc.core.transport;

import dev.outproc.core.fd.OwnedFd;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The fds that arrived with a message, owned: {@link #close()} closes every one not taken.
 * {@link #dropped()} counts fds over the caller's limit, which were closed on arrival.
 */
public final class ReceivedFds implements AutoCloseable {
    private static final ReceivedFds NONE = new ReceivedFds(List.of(), 0);

    private final List<OwnedFd> fds;
    private final int dropped;

    ReceivedFds(List<OwnedFd> fds, int dropped) {
        this.fds = fds.isEmpty() ? List.of() : Collections.unmodifiableList(new ArrayList<>(fds));
        this.dropped = dropped;
    }

    /** {@return an empty set} */
    public static ReceivedFds none() {
        return NONE;
    }

    /** {@return how many fds were kept} */
    public int count() {
        return fds.size();
    }

    /** {@return how many fds arrived beyond the limit and were closed at once} */
    public int dropped() {
        return dropped;
    }

    /** {@return how many fds arrived in all} */
    public int total() {
        return fds.size() + dropped;
    }

    /**
     * Takes ownership of one fd; this set no longer closes it.
     *
     * @param index position, in arrival order
     * @return the owner
     */
    public OwnedFd take(int index) {
        return fds.get(index).transfer();
    }

    /** {@return the owners, in arrival order (still owned by this set)} */
    public List<OwnedFd> all() {
        return fds;
    }

    /** Closes every fd not taken. */
    @Override
    public void close() {
        for (OwnedFd fd : fds) {
            fd.close();
        }
    }
}
