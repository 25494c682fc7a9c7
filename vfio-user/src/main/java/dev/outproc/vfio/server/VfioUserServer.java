package dev.outproc.vfio.server;

import dev.outproc.core.transport.MessageChannel;
import dev.outproc.core.transport.UnixListener;

import java.io.IOException;

/**
 * Serves one {@link VfioUserDevice} over vfio-user, client after client: each accepted connection gets a
 * fresh session (its own negotiated limits, DMA windows and eventfds), and when the client goes, every
 * window is unmapped, every fd it passed is closed and the device is reset, so the next client finds the
 * device as new. A client that breaks the protocol gets an error reply with an errno where the message
 * can be answered; one that breaks framing, vanishes mid-message, sends part of a message and falls silent
 * ({@link ServerOptions#messageTimeoutMillis()}) or stops reading replies ({@link ServerOptions#sendTimeoutMillis()})
 * loses its connection, and the server serves the next. Twin-socket mode is enabled when the client proposes
 * it ({@link ServerOptions#twinSocket()}).
 *
 * {@snippet :
 * try (UnixListener listener = UnixListener.bind(socketPath)) {
 *     new VfioUserServer(device, ServerOptions.DEFAULTS).serve(listener); // until the listener closes
 * }
 * }
 */
public final class VfioUserServer {
    private static final System.Logger LOG = System.getLogger(VfioUserServer.class.getName());

    private final VfioUserDevice device;
    private final ServerOptions options;
    private volatile ServerSession current;

    /**
     * Creates a server for a device.
     *
     * @param device the device
     * @param options limits
     */
    public VfioUserServer(VfioUserDevice device, ServerOptions options) {
        this.device = device;
        this.options = options;
    }

    /**
     * Accepts and serves clients one after another until the listener is closed.
     *
     * @param listener the listening socket
     */
    public void serve(UnixListener listener) {
        while (listener.isOpen()) {
            MessageChannel channel;
            try {
                channel = listener.accept();
            } catch (IOException e) {
                if (listener.isOpen()) {
                    LOG.log(System.Logger.Level.WARNING, "accept failed", e);
                }
                return;
            }
            serve(channel);
        }
    }

    /**
     * Serves one connected client until it goes; then the device is reset.
     *
     * @param channel the connection (owned from now on)
     */
    public void serve(MessageChannel channel) {
        ServerSession session = new ServerSession(device, options, channel);
        current = session;
        try {
            session.run();
        } finally {
            current = null;
            session.close();
        }
    }

    /** {@return the session serving a client now, or {@code null}} */
    ServerSession currentSession() {
        return current;
    }

    /**
     * The PRE_COPY estimates of the device as the current client migrates it ({@link PreCopyInfo}; vfio-user
     * has no message for them, so this is how the device's own process reads them).
     *
     * @return the estimates, empty when no client is connected or the device is not in PRE_COPY
     */
    public java.util.Optional<PreCopyInfo> preCopyInfo() {
        ServerSession s = current;
        if (s == null) {
            return java.util.Optional.empty();
        }
        try {
            return java.util.Optional.of(s.preCopyInfo());
        } catch (IllegalStateException notInPreCopy) {
            return java.util.Optional.empty();
        }
    }

    /** Disconnects the current client, if any (its session ends and the device is reset). */
    public void disconnectClient() {
        ServerSession s = current;
        if (s != null) {
            s.disconnect();
        }
    }
}
