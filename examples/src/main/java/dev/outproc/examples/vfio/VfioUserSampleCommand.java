package dev.outproc.examples.vfio;

import dev.outproc.core.transport.CleanExit;
import dev.outproc.core.transport.UnixListener;
import dev.outproc.examples.migration.MigrationCapabilities;
import dev.outproc.examples.migration.MigrationEndpointServer;
import dev.outproc.examples.migration.MigrationOptions;
import dev.outproc.vfio.server.ServerOptions;
import dev.outproc.vfio.server.VfioUserServer;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintStream;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code vfio-user-sample}: serves a {@link SampleCard} on a Unix socket, client after client, until
 * SIGTERM or SIGINT (which closes the listener, removes the socket file and ends the current client's
 * session). With {@code --migration-socket} the card serves the migration handshake there (integration.md §7)
 * and moves state only under an agreement; {@code --print-capabilities} prints its descriptor.
 */
@Command(name = "vfio-user-sample", mixinStandardHelpOptions = true,
        description = {
                "A small vfio-user PCI card with migratable registers.",
                "",
                "A BAR0 register file (scratch, read counter, a doorbell that DMAs a pattern",
                "into guest memory and raises MSI or INTx) and shared memory in BAR2. Serves",
                "client after client until killed. Migrates with PRE_COPY; the state is a",
                "migration-format stream. With --migration-socket PATH it takes part in the",
                "migration handshake ('migration relay') and saves or loads its state only under",
                "an agreement.",
                "",
                "Example:",
                "  java -jar outproc-examples.jar vfio-user-sample --socket-path /tmp/sample.sock",
                "  java -jar outproc-examples.jar vfio-user-client \\",
                "      --socket-path /tmp/sample.sock info"
        })
public final class VfioUserSampleCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    /** Exactly one of the socket options. */
    @ArgGroup(exclusive = true, multiplicity = "0..1")
    VfioUserSocket socket;

    @Mixin
    MigrationOptions migration = new MigrationOptions();

    @Option(names = "--bar2-size", paramLabel = "BYTES", defaultValue = "8192",
            description = "Size of the shared memory in BAR2: 8192 or 16384 (default: ${DEFAULT-VALUE}).")
    long bar2Size;

    @Option(names = "--print-capabilities",
            description = "Print the device type, features and migration descriptor as JSON and exit.")
    boolean printCapabilities;

    /** The conventions' feature names of this device. */
    private static final List<String> CAPABILITY_FEATURES = List.of("pre-copy", "dma-logging", "twin-socket");

    @Override
    public Integer call() {
        if (bar2Size != 0x2000 && bar2Size != 0x4000) {
            throw new ParameterException(spec.commandLine(), "--bar2-size must be 8192 or 16384, got " + bar2Size);
        }
        if (printCapabilities) {
            try {
                printCapabilities(System.out, new SampleCard(bar2Size, false));
            } catch (IOException e) {
                System.err.println("vfio-user-sample: " + e.getMessage());
                return 1;
            }
            return 0;
        }
        if (socket == null) {
            throw new ParameterException(spec.commandLine(), "one of --socket-path=PATH or --fd=FDNUM is required");
        }
        String where = socket.where();
        try (CleanExit exit = new CleanExit("vfio-user-sample")) {
            SampleCard card = new SampleCard(bar2Size, migration.socket() != null);
            VfioUserServer server = new VfioUserServer(card.device(), ServerOptions.DEFAULTS);
            if (migration.socket() != null) {
                exit.open(() -> MigrationEndpointServer.start(migration.socket(), migration.sessions(card.descriptor()), card::migrationAgreed));
            }
            exit.onStop(server::disconnectClient);
            UnixListener listener = exit.open(socket::listen);
            System.err.println("vfio-user-sample: serving on " + where
                    + (migration.socket() == null ? "" : "; migration handshake on " + migration.socket()));
            server.serve(listener);
        } catch (IOException e) {
            System.err.println("vfio-user-sample: " + VfioUserSocket.naming(where, e));
            return 1;
        }
        return 0;
    }

    /**
     * Prints {@code {"type": "vfio-user-pci", "features": [...], "migration": {...}}}: the conventions'
     * capabilities and the card's migration descriptor, so that an orchestrator can run {@code migration check}
     * before it starts anything.
     *
     * @param out where to print
     * @param card the card
     */
    static void printCapabilities(PrintStream out, SampleCard card) {
        MigrationCapabilities.print(out, "vfio-user-pci", CAPABILITY_FEATURES, card.descriptor());
    }
}
