package dev.outproc.core.transport;

import dev.outproc.core.fd.OwnedFd;
import org.newsclub.net.unix.AFUNIXServerSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;
import org.newsclub.net.unix.FileDescriptorCast;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A listening Unix stream socket that accepts {@link MessageChannel}s: bound to a path
 * ({@code --socket-path}) or adopted from an inherited, already listening fd ({@code --fd}).
 */
public final class UnixListener implements AutoCloseable {
    private final AFUNIXServerSocket server;
    private final Path path;

    private UnixListener(AFUNIXServerSocket server, Path path) {
        this.server = server;
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
        if (Files.exists(path, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            Object type = Files.readAttributes(path, "unix:mode", java.nio.file.LinkOption.NOFOLLOW_LINKS).get("mode");
            boolean socket = type instanceof Integer mode && (mode & 0170000) == 0140000;
            if (!socket) {
                throw new TransportException("refusing to replace " + path + ": it exists and is not a socket");
            }
            Files.delete(path);
        }
        AFUNIXServerSocket server = AFUNIXServerSocket.newInstance();
        try {
            server.bind(AFUNIXSocketAddress.of(path));
        } catch (IOException e) {
            server.close();
            throw e;
        }
        return new UnixListener(server, path);
    }

    /**
     * Adopts an inherited listening socket; ownership of the fd moves here.
     *
     * @param fd the listening socket
     * @return the listener
     * @throws IOException when the fd is not a Unix server socket
     */
    public static UnixListener adopt(OwnedFd fd) throws IOException {
        AFUNIXServerSocket server;
        try {
            server = FileDescriptorCast.unsafeUsing(fd.get()).as(AFUNIXServerSocket.class);
        } catch (IOException | ClassCastException e) {
            fd.close();
            throw new TransportException("fd is not a listening Unix socket", e);
        }
        fd.release();
        return new UnixListener(server, null);
    }

    /**
     * Waits for the next connection.
     *
     * @return the connected channel
     * @throws IOException when accepting fails or the listener is closed
     */
    public MessageChannel accept() throws IOException {
        return MessageChannel.wrap(server.accept());
    }

    /** {@return the path this listener is bound to, or {@code null} for an adopted fd} */
    public Path path() {
        return path;
    }

    /** {@return whether the listener is open} */
    public boolean isOpen() {
        return !server.isClosed();
    }

    /** Stops listening (a blocked {@link #accept()} fails) and removes the socket file. */
    @Override
    public void close() {
        try {
            server.close();
        } catch (IOException ignored) {
            // closing a server socket twice or after an error is fine
        }
        if (path != null) {
            try {
                Files.deleteIfExists(path);
            } catch (IOException ignored) {
                // the file may already be gone
            }
        }
    }
}
