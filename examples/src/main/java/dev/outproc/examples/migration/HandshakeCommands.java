package dev.outproc.examples.migration;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.outproc.core.transport.CleanExit;
import dev.outproc.migration.handshake.HandshakeRelay;
import dev.outproc.migration.handshake.Incompatibility;
import dev.outproc.migration.handshake.MigrationAccept;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.Base64;
import java.util.HexFormat;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** The handshake between two back-end processes, from a shell: {@code relay} and {@code connect} (integration.md §7). */
final class HandshakeCommands {
    private HandshakeCommands() {}

    /** {@code relay}: run one handshake between a source and a destination endpoint and print the outcome. */
    @Command(name = "relay", mixinStandardHelpOptions = true,
            description = {"Run the migration handshake between a source and a destination back-end before any state moves, and print "
                    + "the agreement or the structured refusal as one line of JSON. Exit status 0 when both agreed, 1 when refused.",
                    "ENDPOINT is unix:PATH (a back-end's --migration-socket), stdio, or exec:COMMAND "
                    + "(e.g. exec:'ssh host java -jar outproc-examples.jar migration connect /run/dst.sock')."})
    static final class Relay implements Callable<Integer> {
        @Spec
        CommandLine.Model.CommandSpec spec;

        @Option(names = "--source", required = true, paramLabel = "ENDPOINT", description = "The source back-end's migration endpoint.")
        String source;

        @Option(names = "--destination", required = true, paramLabel = "ENDPOINT", description = "The destination back-end's migration endpoint.")
        String destination;

        @Override
        public Integer call() {
            // With a stdio endpoint, stdout carries handshake bytes: the outcome goes to stderr instead.
            PrintWriter report = source.equals("stdio") || destination.equals("stdio") ? spec.commandLine().getErr() : spec.commandLine().getOut();
            try (ByteChannel s = HandshakeEndpointAddress.open(source); ByteChannel d = HandshakeEndpointAddress.open(destination)) {
                HandshakeRelay.Outcome o = HandshakeRelay.relay(s, d);
                report.println(json(o));
                report.flush();
                return o.agreed() ? 0 : MigrationCommand.EXIT_FAILED;
            } catch (IOException | IllegalArgumentException e) {
                spec.commandLine().getErr().println("error: " + e.getMessage());
                return MigrationCommand.EXIT_USAGE;
            }
        }
    }

    /** The outcome as one line of JSON. */
    static String json(HandshakeRelay.Outcome o) {
        StringWriter w = new StringWriter();
        try (JsonGenerator g = new JsonFactory().createGenerator(w)) {
            g.writeStartObject();
            g.writeBooleanField("agreed", o.agreed());
            MigrationAccept a = o.accept();
            if (a != null) {
                g.writeStringField("model", a.modelId());
                g.writeStringField("formatClass", a.formatClass());
                g.writeNumberField("formatVersion", a.formatVersion());
                g.writeStringField("destinationImplementation", a.destinationImplementation());
                g.writeBooleanField("mac", a.requiresMac());
                g.writeBooleanField("signature", a.requiresSignature());
                g.writeArrayFieldStart("signers");
                for (byte[] k : a.signers()) {
                    g.writeString(Base64.getEncoder().encodeToString(k));
                }
                g.writeEndArray();
                if (o.sourceResult().agreed()) {
                    g.writeStringField("handshakeHash", HexFormat.of().formatHex(o.sourceResult().handshakeHash()));
                } else {
                    g.writeStringField("refusedBy", "source");
                    g.writeStringField("detail", o.sourceResult().detail());
                }
            } else {
                g.writeStringField("refusedBy", "destination");
                g.writeArrayFieldStart("reasons");
                for (Incompatibility i : o.reasons()) {
                    g.writeStartObject();
                    g.writeStringField("code", i.code().name());
                    g.writeStringField("subject", i.subject());
                    g.writeStringField("detail", i.detail());
                    g.writeEndObject();
                }
                g.writeEndArray();
            }
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return w.toString();
    }

    /**
     * {@code serve}: a migration endpoint for a device described by a file, without a device behind it: for dry runs
     * of an orchestration and for tests. Prints each outcome as one line of JSON ({@code "agreed":true} with the
     * agreement, or {@code "agreed":false} for a refused or failed handshake); {@code --count} counts both.
     */
    @Command(name = "serve", mixinStandardHelpOptions = true,
            description = "Serve the migration handshake for the device a descriptor file describes, on --migration-socket, "
                    + "and print each outcome (a dry run of a back-end's endpoint; no state moves).")
    static final class Serve implements Callable<Integer> {
        @Spec
        CommandLine.Model.CommandSpec spec;

        @Parameters(index = "0", paramLabel = "DESCRIPTOR", description = "The device's descriptor (JSON).")
        Path descriptor;

        @CommandLine.Mixin
        MigrationOptions migration = new MigrationOptions();

        @Option(names = "--count", paramLabel = "N", description = "Stop after N handshakes, agreed, refused or failed alike (default: serve until killed).")
        int count;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            if (migration.socket() == null) {
                spec.commandLine().getErr().println("error: --migration-socket is required");
                return MigrationCommand.EXIT_USAGE;
            }
            java.util.concurrent.Semaphore done = new java.util.concurrent.Semaphore(0);
            // SIGTERM closes the endpoint, which removes its socket file.
            try (CleanExit exit = new CleanExit("migration serve");
                 MigrationEndpointServer server = exit.open(() -> MigrationEndpointServer.startWithOutcomes(migration.socket(),
                    migration.sessions(dev.outproc.migration.handshake.DeviceDescriptor.load(descriptor)), outcome -> {
                        synchronized (out) {
                            out.println(outcome.map(a -> "{\"agreed\":true,\"role\":\"" + (a.source() ? "source" : "destination")
                                    + "\",\"formatVersion\":" + a.agreement().formatVersion() + ",\"handshakeHash\":\""
                                    + HexFormat.of().formatHex(a.agreement().handshakeHash()) + "\"}").orElse("{\"agreed\":false}"));
                            out.flush();
                        }
                        done.release();
                    }))) {
                out.println("serving the migration handshake on " + migration.socket());
                out.flush();
                done.acquire(count > 0 ? count : Integer.MAX_VALUE);
                return 0;
            } catch (IOException | IllegalArgumentException e) {
                spec.commandLine().getErr().println("error: " + e.getMessage());
                return MigrationCommand.EXIT_FAILED;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return MigrationCommand.EXIT_FAILED;
            }
        }
    }

    /** {@code connect}: join stdin and stdout to a local Unix socket, so that ssh can carry a handshake to another host. */
    @Command(name = "connect", mixinStandardHelpOptions = true,
            description = "Connect stdin and stdout to a back-end's migration socket on this host (the far end of "
                    + "'relay --destination exec:ssh HOST ... migration connect PATH').")
    static final class Connect implements Callable<Integer> {
        @Spec
        CommandLine.Model.CommandSpec spec;

        @Parameters(index = "0", paramLabel = "SOCKET", description = "The back-end's --migration-socket path.")
        Path socket;

        @Override
        public Integer call() {
            try (SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                c.connect(UnixDomainSocketAddress.of(socket));
                Thread up = Thread.ofPlatform().daemon(true).name("connect-stdin").start(() -> {
                    try {
                        HandshakeEndpointAddress.pump(System.in, c);
                        c.shutdownOutput();
                    } catch (IOException e) {
                        // the socket closed first: the handshake is over
                    }
                });
                ByteBuffer b = ByteBuffer.allocate(8192);
                while (c.read(b) > 0) {
                    System.out.write(b.array(), 0, b.position());
                    System.out.flush();
                    b.clear();
                }
                up.interrupt();
                return 0;
            } catch (IOException e) {
                spec.commandLine().getErr().println("error: " + socket + ": " + e.getMessage());
                return MigrationCommand.EXIT_FAILED;
            }
        }
    }
}
