package dev.outproc.examples.migration;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MigrationEndpointServerTest {
    private static final MigrationEndpointServer.Sessions NO_SESSIONS = new MigrationEndpointServer.Sessions(
            () -> {
                throw new IllegalStateException("no handshake expected");
            },
            () -> {
                throw new IllegalStateException("no handshake expected");
            });

    @TempDir
    Path dir;

    @Test
    void aRelayThatConnectsAsSoonAsTheFileExistsIsNeverRefusedNorFindsItOpenToOthers() throws Exception {
        for (int round = 0; round < 40; round++) {
            Path path = dir.resolve("endpoint-" + round + ".sock");
            CompletableFuture<MigrationEndpointServer> started = CompletableFuture.supplyAsync(() -> {
                try {
                    return MigrationEndpointServer.start(path, NO_SESSIONS, agreed -> { });
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            while (!Files.exists(path)) {
                Thread.onSpinWait();
            }
            int r = round;
            // Owner-only from the moment the file can be seen: no window in which the umask's mode lets others in.
            assertEquals(PosixFilePermissions.fromString("rw-------"), Files.getPosixFilePermissions(path),
                    () -> "round " + r + ": mode at first sight");
            try (SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                c.connect(UnixDomainSocketAddress.of(path));
            } catch (IOException e) {
                throw new AssertionError("round " + r + ": connect refused once the socket file existed", e);
            }
            try (MigrationEndpointServer server = started.get(10, TimeUnit.SECONDS)) {
                assertEquals(PosixFilePermissions.fromString("rw-------"), Files.getPosixFilePermissions(path));
            }
        }
        try (Stream<Path> left = Files.list(dir)) {
            assertEquals(List.of(), left.toList(), "no socket file or staging name is left behind");
        }
    }

    @Test
    void aFileThatIsNotASocketIsRefusedAndKept() throws Exception {
        Path path = dir.resolve("taken.sock");
        Files.writeString(path, "not mine");
        IOException e = assertThrows(IOException.class, () -> MigrationEndpointServer.start(path, NO_SESSIONS, a -> { }));
        assertTrue(e.getMessage().contains(path.toString()) && e.getMessage().contains("not a socket"), e::getMessage);
        assertEquals("not mine", Files.readString(path));
        try (Stream<Path> left = Files.list(dir)) {
            assertEquals(List.of(path), left.toList(), "no staging name is left");
        }
    }

    @Test
    void aLiveEndpointIsRefusedAndAStaleSocketReplaced() throws Exception {
        Path path = dir.resolve("endpoint.sock");
        try (MigrationEndpointServer live = MigrationEndpointServer.start(path, NO_SESSIONS, a -> { })) {
            IOException e = assertThrows(IOException.class, () -> MigrationEndpointServer.start(path, NO_SESSIONS, a -> { }));
            assertTrue(e.getMessage().contains("a live endpoint answers there"), e::getMessage);
            // the first endpoint still answers
            try (SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                c.connect(UnixDomainSocketAddress.of(path));
            }
        }
        // A socket file whose process died without removing it (bound, never listening, closed).
        try (ServerSocketChannel dead = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            dead.bind(UnixDomainSocketAddress.of(path));
        }
        assertTrue(Files.exists(path), "the stale socket file is there");
        try (MigrationEndpointServer again = MigrationEndpointServer.start(path, NO_SESSIONS, a -> { });
             SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            c.connect(UnixDomainSocketAddress.of(path));
        }
    }
}
