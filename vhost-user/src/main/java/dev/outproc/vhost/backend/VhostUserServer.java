package dev.outproc.vhost.backend;

import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.core.fd.Errno;
import dev.outproc.core.fd.NativeException;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.core.transport.PeerRefusedException;
import dev.outproc.core.transport.UnixListener;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Serves front-end after front-end for one device, following the vhost-user "backend program
 * conventions": listen on {@code --socket-path}, or use an already connected socket passed as
 * {@code --fd}. When a front-end disconnects (or breaks the protocol), the back-end releases everything
 * the connection held and waits for the next one; a reconnecting front-end brings the inflight log back
 * with SET_INFLIGHT_FD.
 *
 * <h2 id="access">Access</h2>
 * A socket file the server creates gets {@link VhostUserBackend.Options#socketMode()} (0600 by default,
 * whatever the umask). Every connection, accepted or inherited, is checked against
 * {@link VhostUserBackend.Options#peers()} with {@code SO_PEERCRED} before a byte is read; a refused peer
 * is logged (WARNING, with its pid, uid and gid) and its connection closed. A front-end that connects and
 * sends nothing within {@link VhostUserBackend.Options#handshakeTimeout()} is disconnected, so a silent
 * peer cannot hold the one-at-a-time server.
 */
public final class VhostUserServer implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VhostUserServer.class.getName());

    private final VhostUserBackend backend;
    private final UnixListener listener;
    private final OwnedFd connectedFd;
    private volatile boolean closed;
    private long connections;

    private VhostUserServer(VhostUserBackend backend, UnixListener listener, OwnedFd connectedFd) {
        this.backend = backend;
        this.listener = listener;
        this.connectedFd = connectedFd;
    }

    /**
     * Listens on a path.
     *
     * @param device the device
     * @param options back-end tuning
     * @param socketPath where to listen (a stale socket is replaced)
     * @return the server
     * @throws IOException when binding fails
     */
    public static VhostUserServer listen(VirtioDevice device, VhostUserBackend.Options options, Path socketPath)
            throws IOException {
        return serving(device, options, UnixListener.bind(socketPath, options.socketMode()));
    }

    /** A server on {@code listener}, which is closed when the back-end cannot start. */
    private static VhostUserServer serving(VirtioDevice device, VhostUserBackend.Options options, UnixListener listener)
            throws IOException {
        try {
            listener.requirePeers(options.peers());
            return new VhostUserServer(new VhostUserBackend(device, options), listener, null);
        } catch (IOException | RuntimeException e) {
            listener.close();
            throw e;
        }
    }

    /**
     * Uses an inherited socket ({@code --fd}): a listening socket is served like {@link #listen}, a
     * connected one like {@link #connected}.
     *
     * @param device the device
     * @param options back-end tuning
     * @param fd the socket (ownership moves here; when it is not a socket, it is released without being closed)
     * @return the server
     * @throws IOException when the fd is not open or not a socket, or the back-end cannot start
     */
    public static VhostUserServer inherited(VirtioDevice device, VhostUserBackend.Options options, OwnedFd fd)
            throws IOException {
        boolean listening;
        try {
            listening = UnixListener.isListening(fd);
        } catch (IOException e) {
            // Released, not closed: a number that names no socket belongs to someone else (the JVM's own jar, a
            // log file), and closing it would break them.
            int number = fd.release();
            String why = !(e instanceof NativeException n) ? "is not a socket (" + e.getMessage() + ")"
                    : n.errno() == Errno.EBADF ? "is not open" : "is not a socket (" + Errno.name(n.errno()) + ")";
            throw new IOException("--fd " + number + " " + why, e);
        }
        if (!listening) {
            return connected(device, options, fd);
        }
        return serving(device, options, UnixListener.adopt(fd));
    }

    /**
     * Serves the front-end already connected on an inherited fd ({@code --fd}); when it disconnects,
     * {@link #run()} returns.
     *
     * @param device the device
     * @param options back-end tuning
     * @param fd the connected socket (ownership moves here)
     * @return the server
     * @throws IOException when the back-end cannot start
     */
    public static VhostUserServer connected(VirtioDevice device, VhostUserBackend.Options options, OwnedFd fd)
            throws IOException {
        OwnedFd owned = fd.transfer();
        try {
            return new VhostUserServer(new VhostUserBackend(device, options), null, owned);
        } catch (IOException | RuntimeException e) {
            owned.close();
            throw e;
        }
    }

    /** {@return the back-end (for inspection and for {@link VhostUserBackend#notifyConfigChanged()})} */
    public VhostUserBackend backend() {
        return backend;
    }

    /** {@return how many front-ends were served} */
    public long connections() {
        return connections;
    }

    /**
     * Serves until {@link #close()} (listening) or until the single connection ends ({@code --fd}).
     * A connection that fails is logged and closed; the server goes on.
     */
    public void run() {
        if (connectedFd != null) {
            MessageChannel channel;
            try {
                channel = MessageChannel.adopt(connectedFd);
            } catch (IOException e) {
                LOG.log(System.Logger.Level.WARNING, "cannot use the inherited fd: " + e.getMessage());
                return;
            }
            try {
                backend.options().peers().check(channel);
            } catch (PeerRefusedException e) {
                LOG.log(System.Logger.Level.WARNING, "inherited fd: {0}; connection closed", e.getMessage());
                channel.close();
                return;
            } catch (IOException e) {
                LOG.log(System.Logger.Level.WARNING, "inherited fd: cannot read the peer's credentials: "
                        + e.getMessage() + "; connection closed");
                channel.close();
                return;
            }
            serveOne(channel);
            return;
        }
        while (!closed) {
            MessageChannel channel;
            try {
                channel = listener.accept();
            } catch (IOException e) {
                if (!closed) {
                    LOG.log(System.Logger.Level.ERROR, "accept failed, the server stops: " + e.getMessage());
                }
                return;
            }
            serveOne(channel);
        }
    }

    private void serveOne(MessageChannel channel) {
        connections++;
        LOG.log(System.Logger.Level.DEBUG, "front-end connected ({0})", connections);
        try {
            backend.serve(channel);
            LOG.log(System.Logger.Level.DEBUG, "front-end disconnected");
        } catch (IOException | RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "front-end connection closed: " + e.getMessage());
        } catch (Throwable t) {
            // Any failure a front-end provoked ends its connection only (the session released what it held
            // on the way out); the server goes on with the next front-end.
            LOG.log(System.Logger.Level.ERROR, "front-end connection closed after " + t, t);
        }
    }

    /** Stops accepting, closes the current connection and stops the back-end's workers. */
    @Override
    public void close() {
        closed = true;
        if (listener != null) {
            listener.close();
        }
        backend.close();
    }
}
