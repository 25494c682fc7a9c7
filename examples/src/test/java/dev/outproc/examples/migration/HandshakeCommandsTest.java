package dev.outproc.examples.migration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.outproc.migration.handshake.CompatibilityChecker;
import dev.outproc.migration.handshake.DeviceDescriptor;
import dev.outproc.migration.handshake.HandshakeEndpoint;
import dev.outproc.migration.handshake.MigrationSession;
import dev.outproc.migration.model.Registry;
import dev.outproc.migration.testing.GoldenCorpus;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code migration relay} between two endpoints on Unix sockets: the agreement or the refusal as JSON, and the exit status. */
@Timeout(60)
class HandshakeCommandsTest {
    private static final SecureRandom RANDOM = new SecureRandom();

    private static DeviceDescriptor descriptor(String name) throws IOException {
        try (InputStream in = GoldenCorpus.class.getResourceAsStream("/descriptors/" + name)) {
            return DeviceDescriptor.parse(in.readAllBytes());
        }
    }

    /** A descriptor resource as a file: the command reads a path, and the resource may sit in a jar. */
    private static Path descriptorFile(Path dir, String name) throws IOException {
        Path file = dir.resolve(name);
        try (InputStream in = GoldenCorpus.class.getResourceAsStream("/descriptors/" + name)) {
            java.nio.file.Files.write(file, in.readAllBytes());
        }
        return file;
    }

    private static CompletableFuture<Optional<HandshakeEndpoint.Agreed>> endpoint(Path socket, DeviceDescriptor self) throws IOException {
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(socket));
        Registry reg = Registry.builtin();
        CompletableFuture<Optional<HandshakeEndpoint.Agreed>> result = new CompletableFuture<>();
        Thread.ofPlatform().daemon(true).start(() -> {
            try (server; SocketChannel c = server.accept()) {
                result.complete(HandshakeEndpoint.serve(c, () -> MigrationSession.source(self, reg, true, RANDOM),
                        () -> MigrationSession.destination(self, new CompatibilityChecker(reg), true, RANDOM)));
            } catch (IOException | RuntimeException e) {
                result.completeExceptionally(e);
            }
        });
        return result;
    }

    private static String[] relay(Path dir) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int status = MigrationCommand.run(new PrintWriter(out), new PrintWriter(err), "relay",
                "--source", "unix:" + dir.resolve("src.sock"), "--destination", "unix:" + dir.resolve("dst.sock"));
        return new String[] {Integer.toString(status), out.toString(), err.toString()};
    }

    @Test
    void relayShouldPrintTheAgreementOfACompatiblePair(@TempDir Path dir) throws Exception {
        CompletableFuture<Optional<HandshakeEndpoint.Agreed>> src = endpoint(dir.resolve("src.sock"), descriptor("blk-source.json"));
        CompletableFuture<Optional<HandshakeEndpoint.Agreed>> dst = endpoint(dir.resolve("dst.sock"), descriptor("blk-dest-memory.json"));
        String[] r = relay(dir);
        assertEquals("0", r[0], r[1] + r[2]);
        String hash = java.util.HexFormat.of().formatHex(src.get(10, TimeUnit.SECONDS).orElseThrow().agreement().handshakeHash());
        assertTrue(r[1].contains("\"agreed\":true") && r[1].contains("\"formatVersion\":2") && r[1].contains("\"mac\":true")
                && r[1].contains("\"handshakeHash\":\"" + hash + "\""), r[1]);
        assertTrue(dst.get(10, TimeUnit.SECONDS).isPresent());
    }

    @Test
    void relayShouldPrintTheReasonsOfAnIncompatiblePair(@TempDir Path dir) throws Exception {
        endpoint(dir.resolve("src.sock"), descriptor("blk-source.json"));
        CompletableFuture<Optional<HandshakeEndpoint.Agreed>> dst = endpoint(dir.resolve("dst.sock"), descriptor("blk-dest-incompatible.json"));
        String[] r = relay(dir);
        assertEquals(Integer.toString(MigrationCommand.EXIT_FAILED), r[0], r[1] + r[2]);
        assertTrue(r[1].contains("\"agreed\":false") && r[1].contains("\"refusedBy\":\"destination\"")
                && r[1].contains("{\"code\":\"NO_COMMON_VERSION\",\"subject\":\"virtio-spec.org/pci/virtio-blk/state\""), r[1]);
        assertTrue(dst.get(10, TimeUnit.SECONDS).isEmpty());
    }

    @Test
    void relayShouldFailCleanlyWhenAnEndpointIsMissing(@TempDir Path dir) {
        String[] r = relay(dir);
        assertEquals(Integer.toString(MigrationCommand.EXIT_USAGE), r[0]);
        assertTrue(r[2].startsWith("error: "), r[2]);
    }

    private static int relay(Path source, Path destination) {
        return MigrationCommand.run(new PrintWriter(new StringWriter()), new PrintWriter(new StringWriter()), "relay",
                "--source", "unix:" + source, "--destination", "unix:" + destination);
    }

    @Test
    void serveShouldCountRefusedHandshakesToo(@TempDir Path dir) throws Exception {
        Path socket = dir.resolve("dst.sock");
        Path descriptor = descriptorFile(dir, "blk-dest-memory.json");
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CompletableFuture<Integer> serve = CompletableFuture.supplyAsync(() -> MigrationCommand.run(new PrintWriter(out, true),
                new PrintWriter(err, true), "serve", "--count=2", "--migration-socket=" + socket, descriptor.toString()));
        for (int i = 0; i < 500 && !java.nio.file.Files.exists(socket); i++) {
            Thread.sleep(10);
        }
        endpoint(dir.resolve("counter.sock"), descriptor("counter-source-v2.json"));
        assertEquals(MigrationCommand.EXIT_FAILED, relay(dir.resolve("counter.sock"), socket), "another model is refused");
        // One refused handshake of two: still serving.
        endpoint(dir.resolve("blk.sock"), descriptor("blk-source.json"));
        assertEquals(0, relay(dir.resolve("blk.sock"), socket), "a compatible source is still served after a refusal");
        assertEquals(0, serve.get(10, TimeUnit.SECONDS), out + "\n" + err);
        String[] lines = out.toString().strip().lines().toArray(String[]::new);
        assertEquals(3, lines.length, out.toString());
        assertEquals("{\"agreed\":false}", lines[1]);
        assertTrue(lines[2].startsWith("{\"agreed\":true,\"role\":\"destination\""), lines[2]);
    }

    @Test
    void serveCountOneShouldStopAfterARefusedHandshake(@TempDir Path dir) throws Exception {
        Path socket = dir.resolve("dst.sock");
        Path descriptor = descriptorFile(dir, "blk-dest-incompatible.json");
        StringWriter out = new StringWriter();
        CompletableFuture<Integer> serve = CompletableFuture.supplyAsync(() -> MigrationCommand.run(new PrintWriter(out, true),
                new PrintWriter(new StringWriter(), true), "serve", "--count=1", "--migration-socket=" + socket, descriptor.toString()));
        for (int i = 0; i < 500 && !java.nio.file.Files.exists(socket); i++) {
            Thread.sleep(10);
        }
        endpoint(dir.resolve("src.sock"), descriptor("blk-source.json"));
        assertEquals(MigrationCommand.EXIT_FAILED, relay(dir.resolve("src.sock"), socket));
        assertEquals(0, serve.get(10, TimeUnit.SECONDS), "serve --count=1 stops after one handshake, refused or not: " + out);
        assertTrue(out.toString().contains("{\"agreed\":false}"), out.toString());
        assertTrue(!java.nio.file.Files.exists(socket), "the socket is removed on exit");
    }
}
