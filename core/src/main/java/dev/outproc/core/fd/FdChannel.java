package dev.outproc.core.fd;

import dev.outproc.core.internal.linux.Linux;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;

/**
 * A byte channel over an owned fd (a pipe, a socket): how device state travels over the fd of
 * vhost-user {@code SET_DEVICE_STATE_FD}. Reads block until data or end of stream (-1); writes write
 * everything. Closing the channel closes the fd, which is the end-of-stream signal for the peer.
 *
 * <p>The fd usually comes from a peer that may keep its own copy of the same file description, and with
 * it the power to clear {@code O_NONBLOCK} at any time. So the channel never trusts the mode: before every
 * {@code read(2)} and {@code write(2)} it waits for readiness in {@code poll(2)} (in slices of at most
 * 2 ms), reads only what is there and writes at most {@code PIPE_BUF} (4096) bytes at a time, an amount a
 * writable pipe or socket takes without blocking. {@link #close()} from another thread ends a wait for a
 * silent peer within one slice: the waiting call throws
 * {@link java.nio.channels.AsynchronousCloseException}. (A peer that also reads our end could still take
 * the bytes between our poll and our read; with {@code O_NONBLOCK} cleared that read would wait for the
 * next bytes. Set a deadline around the transfer where that matters.)
 */
public final class FdChannel implements ReadableByteChannel, WritableByteChannel {
    private static final int BUFFER_BYTES = 64 * 1024;

    /** The longest single wait in poll(2), so that close() is noticed quickly. */
    private static final int WAIT_SLICE_MILLIS = 2;
    /** Bytes a writable pipe accepts in one write without blocking ({@code PIPE_BUF}). */
    private static final int ATOMIC_WRITE_BYTES = 4096;

    private final OwnedFd fd;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment buffer = arena.allocate(BUFFER_BYTES, 8);
    private final Object lock = new Object();
    private volatile boolean closed;

    private FdChannel(OwnedFd fd) {
        this.fd = fd;
    }

    /**
     * Wraps an fd; ownership moves to the channel, which makes it non-blocking.
     *
     * @param fd the fd
     * @return the channel
     * @throws NativeException when the fd's flags cannot be set
     */
    public static FdChannel of(OwnedFd fd) throws NativeException {
        int flags = Linux.fcntl(fd.get(), Linux.F_GETFL, 0);
        Linux.fcntl(fd.get(), Linux.F_SETFL, flags | Linux.O_NONBLOCK);
        return new FdChannel(fd.transfer());
    }

    /**
     * Waits up to one slice for {@code events} (or an error or hang-up, which the next call reports);
     * throws once the channel is closed.
     *
     * @return whether the fd is ready
     */
    private boolean awaitReady(short events) throws IOException {
        if (closed) {
            throw new java.nio.channels.AsynchronousCloseException();
        }
        int revents = Linux.poll(fd.get(), events, WAIT_SLICE_MILLIS);
        if (closed) {
            throw new java.nio.channels.AsynchronousCloseException();
        }
        if ((revents & Linux.POLLNVAL) != 0) {
            throw new NativeException("poll(fd=" + fd.get() + ")", Errno.EBADF);
        }
        return revents != 0;
    }

    /**
     * Creates a pipe.
     *
     * @return {@code [read end, write end]}, both close-on-exec
     * @throws NativeException when pipe2 fails
     */
    public static OwnedFd[] pipe() throws NativeException {
        int[] fds = Linux.pipe2(Linux.O_CLOEXEC);
        return new OwnedFd[] {OwnedFd.of(fds[0]), OwnedFd.of(fds[1])};
    }

    @Override
    public int read(ByteBuffer destination) throws IOException {
        synchronized (lock) {
            if (closed) {
                throw new ClosedChannelException();
            }
            int want = Math.min(destination.remaining(), BUFFER_BYTES);
            if (want == 0) {
                return 0;
            }
            long n = -1;
            while (n < 0) {
                if (awaitReady(Linux.POLLIN)) {
                    n = Linux.read(fd.get(), buffer, want); // -1 (EAGAIN): the bytes went elsewhere
                }
            }
            if (n == 0) {
                return -1;
            }
            destination.put(buffer.asSlice(0, n).asByteBuffer());
            return (int) n;
        }
    }

    @Override
    public int write(ByteBuffer source) throws IOException {
        synchronized (lock) {
            if (closed) {
                throw new ClosedChannelException();
            }
            int total = source.remaining();
            while (source.hasRemaining()) {
                int n = Math.min(source.remaining(), BUFFER_BYTES);
                MemorySegment.copy(MemorySegment.ofBuffer(source), 0, buffer, 0, n);
                long done = 0;
                while (done < n) {
                    if (!awaitReady(Linux.POLLOUT)) {
                        continue; // the peer has not read yet
                    }
                    long w = Linux.write(fd.get(), buffer.asSlice(done), Math.min(n - done, ATOMIC_WRITE_BYTES));
                    if (w > 0) {
                        done += w;
                    }
                }
                source.position(source.position() + n);
            }
            return total;
        }
    }

    @Override
    public boolean isOpen() {
        return !closed;
    }

    /** Closes the fd; a read or write waiting in another thread ends with {@link java.nio.channels.AsynchronousCloseException}. */
    @Override
    public void close() {
        closed = true;
        synchronized (lock) { // the waiting call notices within one slice and releases the lock
            fd.close();
            if (arena.scope().isAlive()) {
                arena.close();
            }
        }
    }
}
