package dev.outproc.examples.migration;

import dev.outproc.migration.handshake.HandshakeEndpoint;
import dev.outproc.migration.handshake.MigrationSession;
import java.io.IOException;
import java.net.ConnectException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * A back-end's migration endpoint (integration.md §7): a Unix socket, owner-only, on which each connection runs one
 * handshake ({@link HandshakeEndpoint#serve}); every agreement goes to the device, which uses it for the next
 * SET_DEVICE_STATE_FD transfer in its direction. One connection at a time; a failed or malformed handshake leaves no
 * agreement behind and the endpoint keeps listening.
 */
public final class MigrationEndpointServer implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(MigrationEndpointServer.class.getName());

    /**
     * The sessions the endpoint starts for each role.
     *
     * @param source a new source session per handshake
     * @param destination a new destination session per handshake
     */
    public record Sessions(Supplier<MigrationSession.Source> source, Supplier<MigrationSession.Destination> destination) {}

    /** Longest socket path {@code sockaddr_un} holds, without its terminating NUL. */
    private static final int MAX_SOCKET_PATH = 107;

    private final ServerSocketChannel server;
    private final Path path;
    private final Thread thread;

    private MigrationEndpointServer(ServerSocketChannel server, Path path, Sessions sessions,
            Consumer<Optional<HandshakeEndpoint.Agreed>> outcome) {
        this.server = server;
        this.path = path;
        this.thread = Thread.ofPlatform().daemon(true).name("migration-endpoint").start(() -> loop(sessions, outcome));
    }

    /**
     * Listens on a path and serves handshakes until closed.
     *
     * @param path the socket path; a stale socket there (nobody listening) is replaced
     * @param sessions the device's sessions
     * @param agreed receives each agreement with its role
     * @return the running endpoint
     * @throws IOException if the socket cannot be created
     */
    public static MigrationEndpointServer start(Path path, Sessions sessions, Consumer<HandshakeEndpoint.Agreed> agreed) throws IOException {
        return startWithOutcomes(path, sessions, o -> o.ifPresent(agreed));
    }

    /**
     * Listens on a path and serves handshakes until closed, reporting every handshake whatever its outcome.
     *
     * @param path the socket path; a stale socket there (nobody listening) is replaced
     * @param sessions the device's sessions
     * @param outcome receives one value per connection served: the agreement with its role, or empty when the
     *     handshake was refused or failed (a malformed message, a closed connection)
     * @return the running endpoint
     * @throws IOException if the socket cannot be created
     */
    public static MigrationEndpointServer startWithOutcomes(Path path, Sessions sessions, Consumer<Optional<HandshakeEndpoint.Agreed>> outcome)
            throws IOException {
        replaceStaleSocket(path);
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        // Bound and listening under a fresh name next to the path first, then linked to the path: a relay that
        // connects as soon as the file exists is never refused (bind(2) and listen(2) are two system calls), and
        // link(2) refuses to replace a file that exists.
        Path staging = path.toAbsolutePath().resolveSibling(
                ".outproc-migration-" + Long.toHexString(ProcessHandle.current().pid()) + "-"
                        + Integer.toHexString(ThreadLocalRandom.current().nextInt()));
        if (staging.toString().getBytes(StandardCharsets.UTF_8).length > MAX_SOCKET_PATH) {
            staging = path; // no room for the longer name in sockaddr_un: bind the path itself
        }
        try {
            server.bind(UnixDomainSocketAddress.of(staging));
            Files.setPosixFilePermissions(staging, PosixFilePermissions.fromString("rw-------"));
            if (!staging.equals(path)) {
                Files.createLink(path, staging);
            }
        } catch (IOException | UnsupportedOperationException e) {
            server.close();
            String why = e instanceof FileAlreadyExistsException ? "another process created it meanwhile" : e.getMessage();
            throw new IOException("cannot serve the migration handshake on " + path + ": " + why, e);
        } finally {
            if (!staging.equals(path)) {
                Files.deleteIfExists(staging);
            }
        }
        return new MigrationEndpointServer(server, path, sessions, outcome);
    }

    /**
     * A socket file nobody listens on (left by a process that was killed) is removed; a live endpoint, or a
     * file that is not a socket, is refused.
     */
    private static void replaceStaleSocket(Path path) throws IOException {
        if (!Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        Object mode = Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        if (!(mode instanceof Integer m && (m & 0170000) == 0140000)) {
            throw new IOException("cannot serve the migration handshake on " + path + ": it exists and is not a socket");
        }
        try (SocketChannel probe = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            probe.connect(UnixDomainSocketAddress.of(path));
        } catch (ConnectException e) {
            Files.deleteIfExists(path); // stale: nobody listens
            return;
        }
        throw new IOException("cannot serve the migration handshake on " + path + ": a live endpoint answers there");
    }

    private void loop(Sessions sessions, Consumer<Optional<HandshakeEndpoint.Agreed>> outcome) {
        while (server.isOpen()) {
            boolean[] reported = {false};
            try (SocketChannel c = server.accept()) {
                // The device takes the agreement before the relay learns of it: a transfer started at once finds it.
                Optional<HandshakeEndpoint.Agreed> a = HandshakeEndpoint.serve(c, sessions.source(), sessions.destination(),
                        agreed -> {
                            reported[0] = true;
                            outcome.accept(Optional.of(agreed));
                        });
                if (a.isPresent()) {
                    LOG.log(System.Logger.Level.DEBUG, "migration handshake agreed as {0}: format version {1}",
                            a.get().source() ? "source" : "destination", a.get().agreement().formatVersion());
                } else {
                    LOG.log(System.Logger.Level.DEBUG, "migration handshake refused; no agreement");
                }
            } catch (ClosedChannelException e) {
                return;
            } catch (IOException | RuntimeException e) {
                LOG.log(System.Logger.Level.WARNING, "migration handshake failed: {0}", e.getMessage());
            }
            if (!reported[0]) {
                outcome.accept(Optional.empty());
            }
        }
    }

    @Override
    public void close() throws IOException {
        server.close();
        Files.deleteIfExists(path);
        try {
            thread.join(1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
