package dev.outproc.core.fd;

import dev.outproc.core.internal.linux.Linux;

import java.io.IOException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Owns one Linux file descriptor and closes it exactly once.
 *
 * <p>Every fd outproc receives from a peer or creates is wrapped at once, so that every error path
 * closes it. Ownership moves with {@link #transfer()} (the old owner is left empty) and leaves with
 * {@link #release()} (the caller closes the number). Closing twice is harmless; {@link #get()} after
 * close throws {@link IllegalStateException}. Thread-safe.
 */
public final class OwnedFd implements AutoCloseable {
    private static final int CLOSED = -1;

    private final AtomicInteger fd;

    private OwnedFd(int fd) {
        this.fd = new AtomicInteger(fd);
    }

    /**
     * Takes ownership of a raw fd.
     *
     * @param fd a valid descriptor, {@code >= 0}
     * @return the owner
     */
    public static OwnedFd of(int fd) {
        if (fd < 0) {
            throw new IllegalArgumentException("fd must be >= 0, fd=" + fd);
        }
        return new OwnedFd(fd);
    }

    /**
     * Duplicates {@code fd} (with close-on-exec) into a new owner; the original stays with its owner.
     *
     * @param fd the descriptor to duplicate
     * @return the owner of the duplicate
     * @throws NativeException when {@code fcntl(F_DUPFD_CLOEXEC)} fails
     */
    public static OwnedFd duplicate(int fd) throws NativeException {
        return new OwnedFd(Linux.fcntl(fd, Linux.F_DUPFD_CLOEXEC, 0));
    }

    /**
     * {@return a duplicate of this fd, owned separately}
     *
     * @throws NativeException when dup fails
     */
    public OwnedFd duplicate() throws NativeException {
        return duplicate(get());
    }

    /**
     * {@return the raw fd}
     *
     * @throws IllegalStateException when closed or transferred
     */
    public int get() {
        int value = fd.get();
        if (value == CLOSED) {
            throw new IllegalStateException("fd is closed or transferred");
        }
        return value;
    }

    /** {@return whether this owner still holds an fd} */
    public boolean isOpen() {
        return fd.get() != CLOSED;
    }

    /**
     * Moves the fd to a new owner; this one is left empty.
     *
     * @return the new owner
     */
    public OwnedFd transfer() {
        return new OwnedFd(release());
    }

    /**
     * Gives up ownership without closing.
     *
     * @return the raw fd, which the caller must now close
     */
    public int release() {
        int value = fd.getAndSet(CLOSED);
        if (value == CLOSED) {
            throw new IllegalStateException("fd is closed or transferred");
        }
        return value;
    }

    /**
     * Closes the fd if still owned. Errors from {@code close(2)} are rethrown; the fd is released either way.
     *
     * @throws NativeException when close(2) reports an error
     */
    public void closeChecked() throws NativeException {
        int value = fd.getAndSet(CLOSED);
        if (value != CLOSED) {
            Linux.close(value);
        }
    }

    /** Closes the fd if still owned; an error from {@code close(2)} is logged, never thrown. */
    @Override
    public void close() {
        try {
            closeChecked();
        } catch (IOException e) {
            System.getLogger(OwnedFd.class.getName()).log(System.Logger.Level.WARNING, "close failed", e);
        }
    }

    /**
     * Closes every owner given, ignoring nulls.
     *
     * @param fds the owners
     */
    public static void closeAll(Iterable<OwnedFd> fds) {
        for (OwnedFd f : fds) {
            if (f != null) {
                f.close();
            }
        }
    }

    @Override
    public String toString() {
        int value = fd.get();
        return value == CLOSED ? "OwnedFd[closed]" : "OwnedFd[" + value + "]";
    }
}
