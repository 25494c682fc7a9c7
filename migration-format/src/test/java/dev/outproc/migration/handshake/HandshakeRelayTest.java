package dev.outproc.migration.handshake;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.outproc.migration.model.Registry;
import java.io.IOException;
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

/** The handshake between processes: two endpoints served over Unix sockets, a relay between them. */
@Timeout(60)
class HandshakeRelayTest {
    private static final SecureRandom RANDOM = new SecureRandom();

    /** An endpoint listening on a socket, serving one handshake with a descriptor. */
    private static CompletableFuture<Optional<HandshakeEndpoint.Agreed>> endpoint(Path socket, DeviceDescriptor self) throws IOException {
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(socket));
        Registry reg = Registry.builtin();
        // A thread of its own: the common pool may have a single worker on a small machine.
        CompletableFuture<Optional<HandshakeEndpoint.Agreed>> result = new CompletableFuture<>();
        Thread.ofPlatform().daemon(true).name("endpoint-" + socket.getFileName()).start(() -> {
            try (server; SocketChannel c = server.accept()) {
                result.complete(HandshakeEndpoint.serve(c, () -> MigrationSession.source(self, reg, true, RANDOM),
                        () -> MigrationSession.destination(self, new CompatibilityChecker(reg), true, RANDOM)));
            } catch (IOException | RuntimeException e) {
                result.completeExceptionally(e);
            }
        });
        return result;
    }

    private static SocketChannel connect(Path socket) throws IOException {
        return SocketChannel.open(UnixDomainSocketAddress.of(socket));
    }

    @Test
    void aCompatiblePairShouldAgreeOnBothSidesThroughTheRelay(@TempDir Path dir) throws Exception {
        CompletableFuture<Optional<HandshakeEndpoint.Agreed>> src = endpoint(dir.resolve("src.sock"), CompatibilityCheckerTest.descriptor("blk-source.json"));
        CompletableFuture<Optional<HandshakeEndpoint.Agreed>> dst = endpoint(dir.resolve("dst.sock"), CompatibilityCheckerTest.descriptor("blk-dest-memory.json"));
        HandshakeRelay.Outcome outcome;
        try (SocketChannel s = connect(dir.resolve("src.sock")); SocketChannel d = connect(dir.resolve("dst.sock"))) {
            outcome = HandshakeRelay.relay(s, d);
        }
        assertTrue(outcome.agreed(), outcome.toString());
        assertEquals(2, outcome.accept().formatVersion());
        HandshakeAgreement sa = src.get(10, TimeUnit.SECONDS).orElseThrow().agreement();
        HandshakeAgreement da = dst.get(10, TimeUnit.SECONDS).orElseThrow().agreement();
        assertArrayEquals(sa.handshakeHash(), da.handshakeHash());
        assertArrayEquals(sa.handshakeHash(), outcome.sourceResult().handshakeHash());
        assertArrayEquals(sa.macKey(), da.macKey(), "both ends derive the MAC key; the relay never sees it");
    }

    @Test
    void anIncompatiblePairShouldBeRefusedWithReasonsAndNothingAgreed(@TempDir Path dir) throws Exception {
        CompletableFuture<Optional<HandshakeEndpoint.Agreed>> src = endpoint(dir.resolve("src.sock"), CompatibilityCheckerTest.descriptor("blk-source.json"));
        CompletableFuture<Optional<HandshakeEndpoint.Agreed>> dst = endpoint(dir.resolve("dst.sock"), CompatibilityCheckerTest.descriptor("blk-dest-incompatible.json"));
        HandshakeRelay.Outcome outcome;
        try (SocketChannel s = connect(dir.resolve("src.sock")); SocketChannel d = connect(dir.resolve("dst.sock"))) {
            outcome = HandshakeRelay.relay(s, d);
        }
        assertFalse(outcome.agreed());
        assertTrue(outcome.reasons().stream().anyMatch(r -> r.code() == ReasonCode.NO_COMMON_VERSION), outcome.reasons().toString());
        assertFalse(outcome.sourceResult().agreed());
        assertTrue(src.get(10, TimeUnit.SECONDS).isEmpty());
        assertTrue(dst.get(10, TimeUnit.SECONDS).isEmpty());
    }
}
