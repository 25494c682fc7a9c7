package dev.outproc.core.transport;

import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.internal.linux.Sockets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Who may reach a listening socket: its file mode, a live listener at the path, the peer allow-list. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class UnixListenerAccessTest {
    @TempDir
    Path dir;

    private static MemorySegment oneByte(int value) {
        MemorySegment s = Arena.ofAuto().allocate(1);
        s.set(ValueLayout.JAVA_BYTE, 0, (byte) value);
        return s;
    }

    private static long ourUid() throws Exception {
        return ((Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid", LinkOption.NOFOLLOW_LINKS)).longValue();
    }

    private static long ourGid() throws Exception {
        return ((Integer) Files.getAttribute(Path.of("/proc/self"), "unix:gid", LinkOption.NOFOLLOW_LINKS)).longValue();
    }

    @Test
    void socketFileShouldBeOwnerOnlyByDefault() throws Exception {
        Path socket = dir.resolve("default.sock");
        try (UnixListener listener = UnixListener.bind(socket)) {
            assertEquals(PosixFilePermissions.fromString("rw-------"), Files.getPosixFilePermissions(socket));
        }
    }

    @Test
    void socketFileShouldTakeTheModeGiven() throws Exception {
        Path socket = dir.resolve("group.sock");
        Set<PosixFilePermission> mode = PosixFilePermissions.fromString("rw-rw----");
        try (UnixListener listener = UnixListener.bind(socket, mode)) {
            assertEquals(mode, Files.getPosixFilePermissions(socket));
        }
    }

    @Test
    void pathShouldAcceptAConnectAsSoonAsItExists() throws Exception {
        // A peer that waits for the socket file and connects at once must never meet ECONNREFUSED.
        for (int round = 0; round < 2000; round++) {
            Path socket = dir.resolve("early" + round + ".sock");
            CompletableFuture<UnixListener> bound = CompletableFuture.supplyAsync(() -> {
                try {
                    return UnixListener.bind(socket);
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            while (!Files.exists(socket, LinkOption.NOFOLLOW_LINKS)) {
                Thread.onSpinWait();
            }
            try (OwnedFd client = OwnedFd.of(Sockets.socket())) {
                Sockets.connect(client.get(), socket.toString());
            } finally {
                bound.join().close();
            }
        }
        try (var left = Files.list(dir)) {
            assertEquals(List.of(), left.toList(), "no socket file and no staging name is left behind");
        }
    }

    @Test
    void socketShouldBeBoundWhenTheStagingNameWouldNotFit() throws Exception {
        // 107 bytes is the longest sockaddr_un path: the staging name next to it does not fit.
        String name = "x".repeat(107 - dir.toString().length() - 1);
        Path socket = dir.resolve(name);
        try (UnixListener listener = UnixListener.bind(socket);
             OwnedFd client = OwnedFd.of(Sockets.socket())) {
            Sockets.connect(client.get(), socket.toString());
            assertEquals(PosixFilePermissions.fromString("rw-------"), Files.getPosixFilePermissions(socket));
        }
        assertFalse(Files.exists(socket, LinkOption.NOFOLLOW_LINKS));
    }

    @Test
    void shouldRefuseToListenWhereALiveListenerAnswers() throws Exception {
        Path socket = dir.resolve("live.sock");
        try (UnixListener first = UnixListener.bind(socket)) {
            TransportException e = assertThrows(TransportException.class, () -> UnixListener.bind(socket));
            assertTrue(e.getMessage().contains("live listener"), e.getMessage());
            assertTrue(e.getMessage().contains(socket.toString()), e.getMessage());
            // The first listener still owns the path: a new client reaches it.
            CompletableFuture<Integer> served = CompletableFuture.supplyAsync(() -> {
                try {
                    // The refusal's probe connection comes first: it closes without a byte.
                    while (true) {
                        try (MessageChannel server = first.accept()) {
                            MemorySegment b = Arena.ofAuto().allocate(1);
                            server.readFully(b);
                            return (int) b.get(ValueLayout.JAVA_BYTE, 0);
                        } catch (PeerClosedException probe) {
                            // the probe; wait for the real client
                        }
                    }
                } catch (Exception x) {
                    throw new IllegalStateException(x);
                }
            }, r -> Thread.ofPlatform().daemon(true).start(r));
            try (MessageChannel client = MessageChannel.connect(socket)) {
                client.write(oneByte(42), List.of());
                assertEquals(42, served.get(10, TimeUnit.SECONDS));
            }
        }
    }

    @Test
    void shouldReplaceAStaleSocketFile() throws Exception {
        Path socket = dir.resolve("stale.sock");
        try (OwnedFd bound = OwnedFd.of(Sockets.socket())) {
            Sockets.bind(bound.get(), socket.toString()); // bound, never listening: connect is refused
        }
        assertTrue(Files.exists(socket, LinkOption.NOFOLLOW_LINKS));
        try (UnixListener listener = UnixListener.bind(socket);
             MessageChannel client = MessageChannel.connect(socket);
             MessageChannel server = listener.accept()) {
            client.write(oneByte(7), List.of());
            MemorySegment b = Arena.ofAuto().allocate(1);
            server.readFully(b);
            assertEquals(7, b.get(ValueLayout.JAVA_BYTE, 0));
        }
    }

    @Test
    void peerNotOnTheAllowListShouldBeClosedUnreadAndTheNextAdmittedPeerServed() throws Exception {
        Path socket = dir.resolve("allow.sock");
        long uid = ourUid();
        try (UnixListener listener = UnixListener.bind(socket)) {
            listener.requirePeers(PeerAllowList.of(Set.of(uid + 4242), Set.of()));
            CompletableFuture<MessageChannel> accepted = CompletableFuture.supplyAsync(() -> {
                try {
                    return listener.accept();
                } catch (Exception x) {
                    throw new IllegalStateException(x);
                }
            }, r -> Thread.ofPlatform().daemon(true).start(r));
            try (MessageChannel refused = MessageChannel.connect(socket)) {
                // A request the server must never read. Closed with it unread, the server's socket
                // resets the connection (ECONNRESET); had it closed first, we would see EOF or EPIPE.
                java.io.IOException closed = assertThrows(java.io.IOException.class, () -> {
                    refused.write(oneByte(1), List.of());
                    refused.readFully(Arena.ofAuto().allocate(1));
                });
                boolean reset = closed instanceof dev.outproc.core.fd.NativeException n
                        && (n.errno() == dev.outproc.core.fd.Errno.ECONNRESET || n.errno() == dev.outproc.core.fd.Errno.EPIPE);
                boolean eof = closed instanceof PeerClosedException p && p.bytesRead() == 0;
                assertTrue(reset || eof, "connection closed by the server: " + closed);
            }
            assertFalse(accepted.isDone(), "a refused peer is never handed out");
            listener.requirePeers(PeerAllowList.of(Set.of(), Set.of(ourGid())));
            try (MessageChannel admitted = MessageChannel.connect(socket)) {
                try (MessageChannel server = accepted.get(10, TimeUnit.SECONDS)) {
                    admitted.write(oneByte(9), List.of());
                    MemorySegment b = Arena.ofAuto().allocate(1);
                    server.readFully(b);
                    assertEquals(9, b.get(ValueLayout.JAVA_BYTE, 0));
                    assertEquals(ProcessHandle.current().pid(), server.peerCredentials().pid());
                }
            }
        }
    }

    @Test
    void allowListShouldAdmitByUidOrGid() throws Exception {
        PeerCredentials peer = new PeerCredentials(100, 1000, 2000);
        assertTrue(PeerAllowList.anyone().admits(peer));
        assertTrue(PeerAllowList.of(Set.of(1000L), Set.of()).admits(peer));
        assertTrue(PeerAllowList.of(Set.of(), Set.of(2000L)).admits(peer));
        assertFalse(PeerAllowList.of(Set.of(1001L), Set.of(2001L)).admits(peer));
        assertFalse(PeerAllowList.of(Set.of(), Set.of()).admits(peer));
        assertTrue(PeerAllowList.sameUser().uids().contains(ourUid()));
    }
}
