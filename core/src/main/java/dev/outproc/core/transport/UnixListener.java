package dev.outproc.core.transport;

import dev.outproc.core.fd.NativeException;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.internal.linux.Sockets;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;

/**
 * A listening Unix stream socket that accepts {@link MessageChannel}s: bound to a path
 * ({@code --socket-path}) or adopted from an inherited, already listening fd ({@code --fd}).
 * {@link #close()} from another thread makes a blocked {@link #accept()} fail.
 */
public final class UnixListener implements AutoCloseable {
    private final OwnedFd fd;
    private final Path path;
    private volatile boolean closed;

    private UnixListener(OwnedFd fd, Path path) {
        this.fd = fd;
        this.path = path;
    }

    /**
     * Binds and listens. A stale socket file at the path is replaced; any other file is refused.
     *
     * @param path where to listen
     * @return the listener
     * @throws IOException when binding fails, or the path holds something that is not a socket
     */
    public static UnixListener bind(Path path) throws IOException {
        if (Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
            Object mode = Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
            boolean socket = mode instanceof Integer m && (m & 0170000) == 0140000;
            if (!socket) {
                throw new TransportException("refusing to replace " + path + ": it exists and is not a socket");
            }
            Files.delete(path);
        }
        OwnedFd fd = OwnedFd.of(Sockets.socket());
        try {
            Sockets.bind(fd.get(), path.toString());
            Sockets.listen(fd.get(), 16);
        } catch (NativeException | RuntimeException e) {
            fd.close();
            throw e;
        }
        return new UnixListener(fd, path);
    }

    /**
     * Adopts an inherited listening socket; ownership of the fd moves here.
     *
     * @param fd the listening socket
     * @return the listener
     * @throws IOException reserved for validation of the fd
     */
    public static UnixListener adopt(OwnedFd fd) throws IOException {
        return new UnixListener(fd.transfer(), null);
    }

    /**
     * {@return whether an fd is a listening socket (as opposed to a connected one)}
     *
     * @param fd the socket
     * @throws IOException when the fd is not a socket
     */
    public static boolean isListening(OwnedFd fd) throws IOException {
        return Sockets.isListening(fd.get());
    }

    /**
     * Waits for the next connection.
     *
     * @return the connected channel
     * @throws IOException when accepting fails or the listener is closed
     */
    public MessageChannel accept() throws IOException {
        try {
            return MessageChannel.adopt(OwnedFd.of(Sockets.accept(fd.get())));
        } catch (NativeException | IllegalStateException e) {
            if (closed) {
                throw new TransportException("listener closed");
            }
            throw e;
        }
    }

    /** {@return the path this listener is bound to, or {@code null} for an adopted fd} */
    public Path path() {
        return path;
    }

    /** {@return whether the listener is open} */
    public boolean isOpen() {
        return !closed;
    }

    /** Stops listening (a blocked {@link #accept()} fails) and removes the socket file. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (fd.isOpen()) {
            Sockets.shutdown(fd.get()); // wakes a thread blocked in accept(2)
        }
        fd.close();
        if (path != null) {
            try {
                Files.deleteIfExists(path);
            } catch (IOException ignored) {
                // the file may already be gone
            }
        }
    }
}
