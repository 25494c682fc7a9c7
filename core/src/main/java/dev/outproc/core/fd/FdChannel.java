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
 * A blocking byte channel over an owned fd (a pipe, a socket, a file): how device state travels over
 * the fd of vhost-user {@code SET_DEVICE_STATE_FD}. Reads return -1 at end of stream; writes write
 * everything. Closing the channel closes the fd, which is the end-of-stream signal for the peer.
 */
public final class FdChannel implements ReadableByteChannel, WritableByteChannel {
    private static final int BUFFER_BYTES = 64 * 1024;

    private final OwnedFd fd;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment buffer = arena.allocate(BUFFER_BYTES, 8);

    private FdChannel(OwnedFd fd) {
        this.fd = fd;
    }

    /**
     * Wraps an fd; ownership moves to the channel.
     *
     * @param fd the fd
     * @return the channel
     */
    public static FdChannel of(OwnedFd fd) {
        return new FdChannel(fd.transfer());
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
    public synchronized int read(ByteBuffer destination) throws IOException {
        if (!fd.isOpen()) {
            throw new ClosedChannelException();
        }
        int want = Math.min(destination.remaining(), BUFFER_BYTES);
        if (want == 0) {
            return 0;
        }
        long n;
        do {
            n = Linux.read(fd.get(), buffer, want);
        } while (n < 0); // EAGAIN on a non-blocking fd: retry (the transfer is bounded by the peer)
        if (n == 0) {
            return -1;
        }
        destination.put(buffer.asSlice(0, n).asByteBuffer());
        return (int) n;
    }

    @Override
    public synchronized int write(ByteBuffer source) throws IOException {
        if (!fd.isOpen()) {
            throw new ClosedChannelException();
        }
        int total = source.remaining();
        while (source.hasRemaining()) {
            int n = Math.min(source.remaining(), BUFFER_BYTES);
            MemorySegment.copy(MemorySegment.ofBuffer(source), 0, buffer, 0, n);
            long done = 0;
            while (done < n) {
                long w = Linux.write(fd.get(), buffer.asSlice(done), n - done);
                if (w > 0) {
                    done += w;
                }
            }
            source.position(source.position() + n);
        }
        return total;
    }

    @Override
    public boolean isOpen() {
        return fd.isOpen();
    }

    @Override
    public synchronized void close() {
        fd.close();
        arena.close();
    }
}
