package dev.outproc.examples.vfio;

import dev.outproc.examples.migration.HandshakeBeforeTransfer;
import dev.outproc.migration.handshake.HandshakeRelay;
import dev.outproc.vfio.client.DeviceReport;
import dev.outproc.vfio.client.MigrationDriver;
import dev.outproc.vfio.client.VfioUserClient;
import dev.outproc.vfio.message.Capabilities;
import dev.outproc.vfio.server.MigrationState;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code vfio-user-client}: a vfio-user client for any server. {@code info} prints the device the way
 * {@code lspci -vv} would ({@link DeviceReport}); {@code migrate} moves a device's state from one server
 * into another ({@link MigrationDriver}). Failures are one line on standard error and exit status 1.
 */
@Command(name = "vfio-user-client", mixinStandardHelpOptions = true,
        description = {
                "A vfio-user client: enumerate a server, or migrate a device between two.",
                "",
                "Examples:",
                "  java -jar outproc-examples.jar vfio-user-client \\",
                "      --socket-path /tmp/sample.sock info",
                "  java -jar outproc-examples.jar vfio-user-client migrate \\",
                "      --from /tmp/a.sock --to /tmp/b.sock",
                "  java -jar outproc-examples.jar vfio-user-client migrate \\",
                "      --from /tmp/a.sock --to /tmp/b.sock \\",
                "      --from-handshake unix:/tmp/a.mig --to-handshake unix:/tmp/b.mig"
        },
        subcommands = {VfioUserClientCommand.Info.class, VfioUserClientCommand.Migrate.class})
public final class VfioUserClientCommand {
    /** The size of each MIG_DATA_READ. */
    private static final int MIGRATION_CHUNK = 64 * 1024;

    @Option(names = "--socket-path", paramLabel = "PATH", description = "The server's Unix socket (for info).")
    Path socketPath;

    static VfioUserClient open(Path path) throws IOException {
        VfioUserClient client = VfioUserClient.connect(path);
        try {
            client.negotiate(Capabilities.builder().maxMsgFds(16).maxDataXferSize(1 << 20).build());
            return client;
        } catch (IOException | RuntimeException e) {
            client.close();
            throw e;
        }
    }

    static int fail(PrintStream err, String what, Exception e) {
        err.println("vfio-user-client: " + what + ": " + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage()));
        return 1;
    }

    static String stateName(int code) {
        try {
            return MigrationState.of(code).name();
        } catch (RuntimeException unknown) {
            return "state " + code;
        }
    }

    /** {@code info}: the device report. */
    @Command(name = "info", mixinStandardHelpOptions = true,
            description = "Print the device's IDs, class, BARs, sparse mmap areas, capabilities and IRQs.")
    static final class Info implements Callable<Integer> {
        @ParentCommand
        VfioUserClientCommand parent;

        @Override
        public Integer call() {
            if (parent.socketPath == null) {
                System.err.println("vfio-user-client: info needs --socket-path PATH");
                return 2;
            }
            try (VfioUserClient client = open(parent.socketPath)) {
                System.out.print(DeviceReport.of(client));
                return 0;
            } catch (IOException | RuntimeException e) {
                return fail(System.err, parent.socketPath.toString(), e);
            }
        }
    }

    /**
     * {@code migrate}: moves the device state from one server into another. When both servers take part in the
     * compatibility handshake (their {@code --migration-socket}s are given), it runs first and a refusal ends the
     * command with its reasons before either server is asked for anything.
     */
    @Command(name = "migrate", mixinStandardHelpOptions = true,
            description = {"Migrate the device of one server into a fresh one (PRE_COPY when both offer it, else STOP_COPY).",
                    "With --from-handshake and --to-handshake (the servers' --migration-socket endpoints: unix:PATH, or",
                    "exec:COMMAND) the compatibility handshake runs first; when it refuses, the reasons are printed as JSON",
                    "and no state moves (exit status 1)."})
    static final class Migrate implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Option(names = "--from", paramLabel = "PATH_A", required = true, description = "The source server's socket.")
        Path from;

        @Option(names = "--to", paramLabel = "PATH_B", required = true, description = "The destination server's socket.")
        Path to;

        @Option(names = "--no-pre-copy", description = {"STOP_COPY only, even when both servers offer PRE_COPY (for a server whose",
                "STOP_COPY stream starts over instead of continuing its PRE_COPY bytes, as libvfio-user's samples/server does)."})
        boolean noPreCopy;

        @Option(names = "--from-handshake", paramLabel = "ENDPOINT", description = "The source's migration endpoint (unix:PATH).")
        String fromHandshake;

        @Option(names = "--to-handshake", paramLabel = "ENDPOINT", description = "The destination's migration endpoint (unix:PATH).")
        String toHandshake;

        @Override
        public Integer call() {
            if ((fromHandshake == null) != (toHandshake == null)) {
                throw new ParameterException(spec.commandLine(), "--from-handshake and --to-handshake go together: the handshake needs both sides");
            }
            if (fromHandshake != null) {
                HandshakeRelay.Outcome o;
                try {
                    o = HandshakeBeforeTransfer.relay(fromHandshake, toHandshake);
                } catch (IOException | IllegalArgumentException e) {
                    return fail(System.err, "handshake", e);
                }
                if (!o.agreed()) {
                    System.err.println("vfio-user-client: the handshake refused the migration; no state moved");
                    System.out.println("handshake: " + HandshakeBeforeTransfer.json(o));
                    return 1;
                }
                System.out.println("handshake: " + HandshakeBeforeTransfer.json(o));
            }
            try (VfioUserClient source = open(from)) {
                try (VfioUserClient destination = open(to)) {
                    MigrationDriver.Result r = MigrationDriver.migrate(source, destination, MIGRATION_CHUNK, !noPreCopy);
                    System.out.printf("pre-copy bytes: %d%nstop-copy bytes: %d%ntotal bytes: %d%nsource: %s%ndestination: %s%n",
                            r.preCopyBytes(), r.stopCopyBytes(), r.totalBytes(), stateName(r.sourceState()),
                            stateName(r.destinationState()));
                    return 0;
                } catch (IOException | RuntimeException e) {
                    return fail(System.err, to.toString(), e);
                }
            } catch (IOException | RuntimeException e) {
                return fail(System.err, from.toString(), e);
            }
        }
    }
}
