package dev.outproc.examples.vfio;

import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.transport.UnixListener;
import dev.outproc.examples.migration.MigrationEndpointServer;
import dev.outproc.vfio.server.VfioUserServer;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The vfio-user example servers' socket options (exactly one of {@code --socket-path} and {@code --fd}) and their
 * life as a program: listen, serve client after client, and on SIGTERM or Ctrl-C close the listener (which removes
 * its socket), the client and the migration endpoint.
 */
final class VfioUserSocket {
    @Option(names = "--socket-path", paramLabel = "PATH", required = true,
            description = "Listen on this Unix socket and serve client after client.")
    Path socketPath;

    @Option(names = "--fd", paramLabel = "FDNUM", required = true,
            description = "Serve clients on this inherited listening socket.")
    Integer fd;

    /** {@return the socket path, or "fd N", for messages} */
    String where() {
        return socketPath != null ? socketPath.toString() : "fd " + fd;
    }

    /**
     * Binds the path or adopts the inherited fd.
     *
     * @return the listener
     * @throws IOException when the path cannot be bound or the fd is not a socket
     */
    UnixListener listen() throws IOException {
        return socketPath != null ? UnixListener.bind(socketPath) : UnixListener.adopt(OwnedFd.of(fd));
    }

    /**
     * Serves until the listener closes: SIGTERM or Ctrl-C closes it, disconnects the client and closes the migration
     * endpoint; the listener and the endpoint are closed when serving ends in any other way too.
     *
     * @param command the command's name, for the shutdown thread and messages
     * @param server the server
     * @param listener where clients connect
     * @param endpoint the migration endpoint, or {@code null}
     */
    static void serve(String command, VfioUserServer server, UnixListener listener, MigrationEndpointServer endpoint) {
        Thread hook = new Thread(() -> {
            listener.close();
            server.disconnectClient();
            closeQuietly(command, endpoint);
        }, command + "-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            server.serve(listener);
        } finally {
            listener.close();
            closeQuietly(command, endpoint);
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running: it closes the listener and the endpoint
            }
        }
    }

    /**
     * Closes a migration endpoint, reporting a failure on standard error.
     *
     * @param command the command's name, for the message
     * @param endpoint the endpoint, or {@code null}
     */
    static void closeQuietly(String command, MigrationEndpointServer endpoint) {
        if (endpoint != null) {
            try {
                endpoint.close();
            } catch (IOException e) {
                System.err.println(command + ": closing the migration endpoint: " + e.getMessage());
            }
        }
    }
}
