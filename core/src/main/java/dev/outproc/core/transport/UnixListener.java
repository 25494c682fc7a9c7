package dev.outproc.core.transport;

import dev.outproc.core.fd.Errno;
import dev.outproc.core.fd.NativeException;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.internal.linux.Sockets;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * A listening Unix stream socket that accepts {@link MessageChannel}s: bound to a path
 * ({@code --socket-path}) or adopted from an inherited, already listening fd ({@code --fd}).
 * {@link #close()} from another thread makes a blocked {@link #accept()} fail.
 *
 * <h2 id="access">Access</h2>
 * A socket file is created with mode {@code 0600} unless another mode is given: only the owner (and root)
 * may connect. The mode is set between {@code bind(2)} and {@code listen(2)}, while a connect is still
 * refused, so no peer gets in under the umask's mode. The socket is bound under a temporary name in the
 * same directory and linked to its path only after {@code listen(2)}: once the path exists, a connect
 * succeeds (a peer or script that waits for the file never races the listener). A {@link PeerAllowList} given with
 * {@link #requirePeers} is checked on every accepted connection before it is returned, that is before
 * any byte is read: a refused peer is logged and its connection closed, and {@code accept} waits for the
 * next one.
 *
 * <h2 id="path">An existing path</h2>
 * {@link #bind} never takes a path from a live back-end: when something answers a connect there, it
 * refuses with a {@link TransportException} (the other process keeps serving). A socket file nobody
 * listens on ({@code ECONNREFUSED}) is stale and replaced; any other file is refused.
 */
public final class UnixListener implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(UnixListener.class.getName());
    /** The default mode of a socket file: read and write (connect) for the owner only. */
    public static final Set<PosixFilePermission> DEFAULT_SOCKET_MODE =
            Set.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE);

    private final OwnedFd fd;
    private final Path path;
    private volatile PeerAllowList allowList = PeerAllowList.anyone();
    private volatile boolean closed;

    private UnixListener(OwnedFd fd, Path path) {
        this.fd = fd;
        this.path = path;
    }

    /**
     * Binds and listens with the socket file's mode {@code 0600} ({@link #DEFAULT_SOCKET_MODE}).
     *
     * @param path where to listen
     * @return the listener
     * @throws IOException when binding fails, a live listener answers at the path, or the path holds
     *         something that is not a socket
     */
    public static UnixListener bind(Path path) throws IOException {
        return bind(path, DEFAULT_SOCKET_MODE);
    }

    /**
     * Binds and listens. A live listener at the path is refused, a stale socket file replaced, any other
     * file refused.
     *
     * @param path where to listen
     * @param socketMode the socket file's permissions (write permission is what lets a peer connect)
     * @return the listener
     * @throws IOException when binding fails, a live listener answers at the path, or the path holds
     *         something that is not a socket
     */
    public static UnixListener bind(Path path, Set<PosixFilePermission> socketMode) throws IOException {
        Objects.requireNonNull(socketMode, "socketMode");
        if (Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
            Object mode = Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
            boolean socket = mode instanceof Integer m && (m & 0170000) == 0140000;
            if (!socket) {
                throw new TransportException("refusing to replace " + path + ": it exists and is not a socket");
            }
            refuseLiveListener(path);
            Files.delete(path);
        }
        OwnedFd fd = OwnedFd.of(Sockets.socket());
        Path staging = stagingPath(path);
        boolean linked = false;
        try {
            try {
                Sockets.bind(fd.get(), staging.toString());
            } catch (NativeException e) {
                // Name the path asked for, not the staging name next to it.
                NativeException named = new NativeException("bind(" + path + ")", e.errno());
                named.addSuppressed(e);
                throw named;
            }
            try {
                // Before listen(2): until then a connect is refused, so the umask's mode admits nobody.
                Files.setPosixFilePermissions(staging, socketMode);
                Sockets.listen(fd.get(), 16);
                if (!staging.equals(path)) {
                    // The path appears only once it accepts: a peer that waits for the file never meets
                    // ECONNREFUSED. link(2) refuses to replace a file another process created meanwhile.
                    Files.createLink(path, staging);
                }
                linked = true;
            } finally {
                if (!staging.equals(path)) {
                    Files.deleteIfExists(staging);
                }
            }
        } catch (IOException | RuntimeException e) {
            fd.close();
            if (linked) {
                Files.deleteIfExists(path); // the socket appeared under its name, but nobody will serve it
            }
            throw e;
        }
        return new UnixListener(fd, path);
    }

    /** Longest socket path {@code sockaddr_un} holds, without its terminating NUL. */
    private static final int MAX_SOCKET_PATH = 107;

    /**
     * A fresh name next to the path to bind and listen on before the socket takes its real name; the path
     * itself when such a name would not fit into {@code sockaddr_un} (then the file is visible from
     * {@code bind(2)} on and an early connect is refused until {@code listen(2)}).
     */
    private static Path stagingPath(Path path) {
        Path parent = path.toAbsolutePath().getParent();
        String name = ".outproc-" + Long.toHexString(ProcessHandle.current().pid()) + "-"
                + Integer.toHexString(ThreadLocalRandom.current().nextInt());
        Path staging = parent.resolve(name);
        return staging.toString().getBytes(StandardCharsets.UTF_8).length <= MAX_SOCKET_PATH
                ? staging : path;
    }

    /** Connects to an existing socket file: refuses when something answers, returns when nobody listens. */
    private static void refuseLiveListener(Path path) throws IOException {
        try (OwnedFd probe = OwnedFd.of(Sockets.socket())) {
            Sockets.connect(probe.get(), path.toString());
        } catch (NativeException e) {
            if (e.errno() == Errno.ECONNREFUSED || e.errno() == Errno.ENOENT) {
                return; // stale: nobody listens (or it just went away)
            }
            throw new TransportException("refusing to replace socket " + path + ": cannot tell whether a back-end "
                    + "listens there (" + e.getMessage() + ")", e);
        }
        throw new TransportException("refusing to listen on " + path + ": a live listener answers there (another "
                + "back-end process?); stop it or choose another path");
    }

    /**
     * Adopts an inherited listening socket; ownership of the fd moves here. The fd is checked first, so that a wrong
     * {@code --fd} is one clear error at start-up and not a failed accept later. When it is not a listening socket
     * it is released, not closed: a number that names something else (the JVM's own jar, a log file) belongs to
     * someone else, and closing it would break them.
     *
     * @param fd the listening socket
     * @return the listener
     * @throws TransportException when the fd is not open, not a socket, or a socket that does not listen
     */
    public static UnixListener adopt(OwnedFd fd) throws IOException {
        int n = fd.get();
        boolean listening;
        try {
            listening = Sockets.isListening(n);
        } catch (NativeException e) {
            fd.release();
            throw new TransportException(e.errno() == Errno.EBADF ? "fd " + n + " is not open"
                    : "fd " + n + " is not a socket (" + Errno.name(e.errno()) + ")", e);
        }
        if (!listening) {
            fd.release();
            throw new TransportException("fd " + n + " is a socket that does not listen (a connected socket?)");
        }
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
     * Admits only the peers of {@code peers} from the next {@link #accept()} on.
     *
     * @param peers the allow-list ({@link PeerAllowList#anyone()} to admit every peer again)
     * @return this listener
     */
    public UnixListener requirePeers(PeerAllowList peers) {
        this.allowList = Objects.requireNonNull(peers, "peers");
        return this;
    }

    /** {@return the allow-list {@link #accept()} applies} */
    public PeerAllowList allowList() {
        return allowList;
    }

    /**
     * Waits for the next connection from an admitted peer. A peer the {@linkplain #requirePeers
     * allow-list} does not admit is logged (WARNING, with its pid, uid and gid) and its connection closed
     * before anything is read; then the wait goes on.
     *
     * @return the connected channel
     * @throws IOException when accepting fails or the listener is closed
     */
    public MessageChannel accept() throws IOException {
        while (true) {
            MessageChannel channel;
            try {
                channel = MessageChannel.adopt(OwnedFd.of(Sockets.accept(fd.get())));
            } catch (NativeException | IllegalStateException e) {
                if (closed) {
                    throw new TransportException("listener closed");
                }
                throw e;
            }
            try {
                allowList.check(channel);
                return channel;
            } catch (PeerRefusedException e) {
                LOG.log(System.Logger.Level.WARNING, "{0}: {1}; connection closed", pathOrFd(), e.getMessage());
                channel.close();
            } catch (IOException | RuntimeException e) {
                channel.close();
                throw e;
            }
        }
    }

    private String pathOrFd() {
        return path != null ? path.toString() : "listening fd";
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
