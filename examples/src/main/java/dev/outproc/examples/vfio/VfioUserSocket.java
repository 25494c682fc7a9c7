package dev.outproc.examples.vfio;

import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.transport.UnixListener;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The vfio-user example servers' socket options: exactly one of {@code --socket-path} and {@code --fd}. The
 * listener is opened through the program's {@link dev.outproc.core.transport.CleanExit}, which closes it (removing its
 * socket file), the client and the migration endpoint on SIGTERM or Ctrl-C.
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
     * {@return an error's message, after where it happened unless the message names that already}
     *
     * @param where the socket path or "fd N"
     * @param e the error
     */
    static String naming(String where, Exception e) {
        String m = String.valueOf(e.getMessage());
        return m.contains(where) ? m : where + ": " + m;
    }
}
