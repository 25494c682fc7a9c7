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

    private EventFd(OwnedFd fd) {
        this.fd = fd;
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
     * Adopts an eventfd received from a peer; ownership moves here.
     *
     * @param fd the owner to take the fd from
     * @return the eventfd
     */
    public static EventFd adopt(OwnedFd fd) {
        return new EventFd(fd.transfer());
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
        MemorySegment value = Linux.scratch();
        value.set(ValueLayout.JAVA_LONG, 0, 1L);
        // A full counter (EAGAIN, 2^64-2) is already signalled: nothing is lost.
        Linux.write(fd.get(), value, 8);
    }

    /**
     * Reads and resets the counter without blocking when the fd is non-blocking.
     *
     * @return the counter's value, 0 when it was not signalled
     * @throws NativeException when read(2) fails
     */
    public long drain() throws NativeException {
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
