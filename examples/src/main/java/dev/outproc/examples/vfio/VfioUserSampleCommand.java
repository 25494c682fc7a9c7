package dev.outproc.examples.vfio;

import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.transport.UnixListener;
import dev.outproc.vfio.server.ServerOptions;
import dev.outproc.vfio.server.VfioUserServer;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code vfio-user-sample}: serves a {@link SampleCard} on a Unix socket, client after client, until
 * SIGTERM or SIGINT (which closes the listener, removes the socket file and ends the current client's
 * session).
 */
@Command(name = "vfio-user-sample", mixinStandardHelpOptions = true,
        description = {
                "A small vfio-user PCI card: a BAR0 register file (scratch, read counter, a doorbell that DMAs a pattern",
                "into guest memory and raises MSI or INTx), shared memory in BAR2, migratable registers.",
                "Serves client after client until killed.",
                "",
                "Example:",
                "  java -jar outproc-examples.jar vfio-user-sample --socket-path /tmp/sample.sock",
                "  java -jar outproc-examples.jar vfio-user-client --socket-path /tmp/sample.sock info"
        })
public final class VfioUserSampleCommand implements Callable<Integer> {
    /** Exactly one of the socket options. */
    static final class Socket {
        @Option(names = "--socket-path", paramLabel = "PATH", required = true,
                description = "Listen on this Unix socket and serve client after client.")
        Path socketPath;

        @Option(names = "--fd", paramLabel = "FDNUM", required = true,
                description = "Serve clients on this inherited listening socket.")
        Integer fd;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Socket socket;

    @Override
    public Integer call() {
        String where = socket.socketPath != null ? socket.socketPath.toString() : "fd " + socket.fd;
        UnixListener listener;
        VfioUserServer server;
        try {
            SampleCard card = new SampleCard();
            server = new VfioUserServer(card.device(), ServerOptions.DEFAULTS);
            listener = socket.socketPath != null ? UnixListener.bind(socket.socketPath) : UnixListener.adopt(OwnedFd.of(socket.fd));
        } catch (IOException e) {
            System.err.println("vfio-user-sample: " + where + ": " + e.getMessage());
            return 1;
        }
        Thread hook = new Thread(() -> {
            listener.close();
            server.disconnectClient();
        }, "vfio-user-sample-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        System.err.println("vfio-user-sample: serving on " + where);
        try {
            server.serve(listener);
        } finally {
            listener.close();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running: it closed the listener
            }
        }
        return 0;
    }
}
