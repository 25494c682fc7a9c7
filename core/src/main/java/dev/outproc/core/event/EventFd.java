package dev.outproc.core.event;

import dev.outproc.core.fd.NativeException;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.internal.linux.Linux;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A Linux eventfd: the notification primitive of vhost-user kicks and calls and of vfio-user IRQs.
 *
 * <p>{@link #signal()} adds one to the counter; {@link #drain()} reads and resets it. Neither allocates.
 * An {@code EventFd} either owns its fd (created here or adopted from a peer) and closes it on
 * {@link #close()}.
 */
public final class EventFd implements AutoCloseable {
    private final OwnedFd fd;
    /** A peer's eventfd in blocking mode: check readiness first, so that no call here ever blocks. */
    private final boolean peerBlocking;

    private EventFd(OwnedFd fd) {
        this(fd, false);
    }

    private EventFd(OwnedFd fd, boolean peerBlocking) {
        this.fd = fd;
        this.peerBlocking = peerBlocking;
    }

    /**
     * Creates a non-blocking, close-on-exec eventfd with counter zero.
     *
     * @return the eventfd
     * @throws NativeException when eventfd(2) fails
     */
    public static EventFd create() throws NativeException {
        return new EventFd(OwnedFd.of(Linux.eventfd(0, Linux.EFD_NONBLOCK | Linux.EFD_CLOEXEC)));
    }

    /**
     * Creates a blocking, close-on-exec eventfd: {@link #await()} sleeps until it is signalled.
     *
     * @return the eventfd
     * @throws NativeException when eventfd(2) fails
     */
    public static EventFd createBlocking() throws NativeException {
        return new EventFd(OwnedFd.of(Linux.eventfd(0, Linux.EFD_CLOEXEC)));
    }

    /**
     * Adopts an eventfd received from a peer; ownership moves here. The peer's mode is left as it is
     * (it belongs to the file description both sides share), but {@link #signal()} and {@link #drain()}
     * never block: on a blocking eventfd they check readiness first ({@code poll}), so a full counter
     * is left full (it is signalled already) and an empty one reads as 0.
     *
     * @param fd the owner to take the fd from
     * @return the eventfd
     * @throws NativeException when the fd's flags cannot be read (not an fd)
     */
    public static EventFd adopt(OwnedFd fd) throws NativeException {
        boolean blocking = (Linux.fcntl(fd.get(), Linux.F_GETFL, 0) & Linux.O_NONBLOCK) == 0;
        return new EventFd(fd.transfer(), blocking);
    }

    /** {@return the raw fd} */
    public int fd() {
        return fd.get();
    }

    /** {@return the fd's owner (for duplicating or sending it)} */
    public OwnedFd owner() {
        return fd;
    }

    /**
     * Adds one to the counter, waking whoever waits on it. Allocates nothing.
     *
     * @throws NativeException when write(2) fails
     */
    public void signal() throws NativeException {
        signal(1);
    }

    /**
     * Adds {@code increment} to the counter (eventfd(2) semantics: at most 2^64-2 in all). On a
     * non-blocking eventfd a counter that would overflow is left as it is: it is signalled already.
     *
     * @param increment the amount, 1 to 2^64-2 as an unsigned value
     * @throws NativeException when write(2) fails
     */
    public void signal(long increment) throws NativeException {
        if (peerBlocking && !Linux.ready(fd.get(), Linux.POLLOUT)) {
            return; // full: a write would block, and the counter is signalled anyway
        }
        MemorySegment value = Linux.scratch();
        value.set(ValueLayout.JAVA_LONG, 0, increment);
        Linux.write(fd.get(), value, 8); // -1 (EAGAIN): the counter is full, which is signalled too
    }

    /**
     * Reads and resets the counter without blocking when the fd is non-blocking.
     *
     * @return the counter's value, 0 when it was not signalled
     * @throws NativeException when read(2) fails
     */
    public long drain() throws NativeException {
        if (peerBlocking && !Linux.ready(fd.get(), Linux.POLLIN)) {
            return 0;
        }
        MemorySegment value = Linux.scratch();
        long n = Linux.read(fd.get(), value, 8);
        return n == 8 ? value.get(ValueLayout.JAVA_LONG, 0) : 0;
    }

    /**
     * Blocks until the counter is non-zero (on a blocking eventfd), then reads and resets it.
     *
     * @return the counter's value
     * @throws NativeException when read(2) fails
     */
    public long await() throws NativeException {
        return drain();
    }

    @Override
    public void close() {
        fd.close();
    }

    @Override
    public String toString() {
        return "EventFd[" + fd + "]";
    }
}
