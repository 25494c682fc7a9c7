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
 * <p>The fd is switched to non-blocking mode and waits are short sleeps, so that {@link #close()} from
 * another thread ends a read or write that a silent peer would otherwise block forever: the blocked
 * call throws {@link java.nio.channels.AsynchronousCloseException}.
 */
public final class FdChannel implements ReadableByteChannel, WritableByteChannel {
    private static final int BUFFER_BYTES = 64 * 1024;

    private static final long MAX_WAIT_NANOS = 2_000_000;

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

    /** Sleeps a little longer each time the fd is not ready, up to 2 ms; throws once closed. */
    private long pause(long waitNanos) throws java.nio.channels.AsynchronousCloseException {
        if (closed) {
            throw new java.nio.channels.AsynchronousCloseException();
        }
        java.util.concurrent.locks.LockSupport.parkNanos(waitNanos);
        if (closed) {
            throw new java.nio.channels.AsynchronousCloseException();
        }
        return Math.min(MAX_WAIT_NANOS, waitNanos * 2);
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
            long n;
            long wait = 10_000;
            while ((n = Linux.read(fd.get(), buffer, want)) < 0) {
                wait = pause(wait); // EAGAIN: nothing yet
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
                long wait = 10_000;
                while (done < n) {
                    long w = Linux.write(fd.get(), buffer.asSlice(done), n - done);
                    if (w > 0) {
                        done += w;
                        wait = 10_000;
                    } else {
                        wait = pause(wait); // EAGAIN: the peer has not read yet
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

    /** Closes the fd; a read or write blocked in another thread ends with {@link java.nio.channels.AsynchronousCloseException}. */
    @Override
    public void close() {
        closed = true;
        synchronized (lock) { // the blocked call notices within 2 ms and releases the lock
            fd.close();
            if (arena.scope().isAlive()) {
                arena.close();
            }
        }
    }
}
