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
 * An {@code EventFd} owns its fd (created here or adopted from a peer) and closes it on {@link #close()}.
 *
 * <h2 id="peer">Shared with a peer</h2>
 * An eventfd that a peer also holds (one {@linkplain #adopt adopted} from it, or one whose
 * {@linkplain #owner() owner} was handed out to be sent) shares its file description, and with it the
 * {@code O_NONBLOCK} flag: the peer may clear it at any time, and may fill the counter to its maximum,
 * so that a plain {@code write(2)} would block forever. On such an eventfd every {@link #signal},
 * {@link #trySignal} and {@link #drain} first checks readiness with {@code poll(2)} (timeout 0), whatever
 * mode the fd had when it arrived: a full counter makes {@code trySignal} return {@code false} (it is signalled already), an
 * empty one makes {@code drain} return 0. The price is one extra system call per operation; an eventfd
 * private to this process (the event loop's wake-up) skips it.
 */
public final class EventFd implements AutoCloseable {
    private final OwnedFd fd;
    /** Whether a peer may hold the same file description: check readiness before every read and write. */
    private volatile boolean shared;
    /** Created blocking on purpose: {@link #await()} sleeps in read(2). */
    private final boolean blockingByDesign;

    private EventFd(OwnedFd fd, boolean shared, boolean blockingByDesign) {
        this.fd = fd;
        this.shared = shared;
        this.blockingByDesign = blockingByDesign;
    }

    /**
     * Creates a non-blocking, close-on-exec eventfd with counter zero.
     *
     * @return the eventfd
     * @throws NativeException when eventfd(2) fails
     */
    public static EventFd create() throws NativeException {
        return new EventFd(OwnedFd.of(Linux.eventfd(0, Linux.EFD_NONBLOCK | Linux.EFD_CLOEXEC)), false, false);
    }

    /**
     * Creates a blocking, close-on-exec eventfd: {@link #await()} sleeps until it is signalled.
     *
     * @return the eventfd
     * @throws NativeException when eventfd(2) fails
     */
    public static EventFd createBlocking() throws NativeException {
        return new EventFd(OwnedFd.of(Linux.eventfd(0, Linux.EFD_CLOEXEC)), false, true);
    }

    /**
     * Adopts an eventfd received from a peer; ownership moves here. The peer's mode is left as it is
     * (it belongs to the file description both sides share), and {@link #signal()} and {@link #drain()}
     * never block, whatever the peer does to the mode later (see <a href="#peer">Shared with a peer</a>).
     *
     * @param fd the owner to take the fd from
     * @return the eventfd
     * @throws NativeException when the fd's flags cannot be read (not an fd)
     */
    public static EventFd adopt(OwnedFd fd) throws NativeException {
        Linux.fcntl(fd.get(), Linux.F_GETFL, 0); // fails cleanly (EBADF) on a number that is no fd
        return new EventFd(fd.transfer(), true, false);
    }

    /** {@return the raw fd} */
    public int fd() {
        return fd.get();
    }

    /**
     * {@return the fd's owner (for duplicating or sending it)} From this call on the eventfd counts as
     * shared with a peer and checks readiness before every operation.
     */
    public OwnedFd owner() {
        shared = true;
        return fd;
    }

    /** {@return whether readiness is checked before every read and write (a peer may hold the fd)} */
    public boolean isShared() {
        return shared;
    }

    /**
     * Adds one to the counter, waking whoever waits on it; never blocks. Allocates nothing.
     *
     * @throws NativeException when write(2) fails
     */
    public void signal() throws NativeException {
        trySignal(1);
    }

    /**
     * Adds {@code increment} to the counter (eventfd(2) semantics: at most 2^64-2 in all); never blocks.
     * A counter that would overflow is left as it is: it is signalled already.
     *
     * @param increment the amount, 1 to 2^64-2 as an unsigned value
     * @throws NativeException when write(2) fails
     */
    public void signal(long increment) throws NativeException {
        trySignal(increment);
    }

    /**
     * Adds one to the counter and tells whether it did; never blocks. Allocates nothing.
     *
     * @return {@code true} when written, {@code false} when the counter was full (it is signalled already)
     * @throws NativeException when write(2) fails
     */
    public boolean trySignal() throws NativeException {
        return trySignal(1);
    }

    /**
     * Adds {@code increment} to the counter and tells whether it did; never blocks, whatever a peer did
     * to the fd's mode (see <a href="#peer">Shared with a peer</a>).
     *
     * @param increment the amount, 1 to 2^64-2 as an unsigned value
     * @return {@code true} when written, {@code false} when the counter had no room (it is signalled already)
     * @throws NativeException when write(2) fails
     */
    public boolean trySignal(long increment) throws NativeException {
        int raw = fd.get();
        if (shared && !Linux.ready(raw, Linux.POLLOUT)) {
            return false; // full: a write could block, and the counter is signalled anyway
        }
        MemorySegment value = Linux.scratch();
        value.set(ValueLayout.JAVA_LONG, 0, increment);
        return Linux.write(raw, value, 8) == 8; // -1 (EAGAIN): no room for this increment
    }

    /**
     * Reads and resets the counter without blocking (unless the eventfd was
     * {@linkplain #createBlocking() created blocking} and is not shared).
     *
     * @return the counter's value, 0 when it was not signalled
     * @throws NativeException when read(2) fails
     */
    public long drain() throws NativeException {
        int raw = fd.get();
        if (shared && !Linux.ready(raw, Linux.POLLIN)) {
            return 0;
        }
        MemorySegment value = Linux.scratch();
        long n = Linux.read(raw, value, 8);
        return n == 8 ? value.get(ValueLayout.JAVA_LONG, 0) : 0;
    }

    /**
     * Blocks until the counter is non-zero (on an eventfd {@linkplain #createBlocking() created blocking}
     * and not shared), then reads and resets it. On any other eventfd it is {@link #drain()}.
     *
     * @return the counter's value
     * @throws NativeException when read(2) fails
     */
    public long await() throws NativeException {
        if (!(blockingByDesign && shared)) {
            return drain();
        }
        // A peer holds it: wait in poll(2), never in read(2), so a peer that drains it first cannot wedge us.
        long value;
        while ((value = drain()) == 0) {
            Linux.poll(fd.get(), Linux.POLLIN, 100);
        }
        return value;
    }

    @Override
    public void close() {
        fd.close();
    }

    @Override
    public String toString() {
        return "EventFd[" + fd + (shared ? ", shared" : "") + "]";
    }
}
