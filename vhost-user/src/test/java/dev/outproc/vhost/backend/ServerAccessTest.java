package dev.outproc.vhost.backend;

import dev.outproc.core.transport.MessageChannel;
import dev.outproc.core.transport.PeerAllowList;
import dev.outproc.core.transport.PeerClosedException;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.vhost.frontend.VhostUserFrontend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Access control of {@link VhostUserServer} on real sockets (issue finding "Access"): the socket file's
 * mode, the SO_PEERCRED allow-list checked before a byte is read, and the handshake timeout that stops a
 * silent peer from holding the one-at-a-time server. Each test ends with a front-end that is served.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ServerAccessTest {
    @TempDir
    Path dir;

    private static Rig.Served serve(Path socket, VhostUserBackend.Options options) throws IOException {
        VhostUserServer server = VhostUserServer.listen(RamBlkDevice.ram(1 << 20, 1), options, socket);
        Thread t = Thread.ofPlatform().daemon(true).name("test-vhost-server").start(server::run);
        return new Rig.Served(server, t);
    }

    private static long ourUid() throws IOException {
        return ((Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid", LinkOption.NOFOLLOW_LINKS)).longValue();
    }

    private static void assertServed(Path socket) throws IOException {
        try (VhostUserFrontend fe = VhostUserFrontend.connect(socket)) {
            fe.setReplyTimeoutMillis(10_000);
            assertTrue((fe.getFeatures() & VirtioFeature.VERSION_1.mask()) != 0, "GET_FEATURES answers");
        }
    }

    @Test
    void theSocketFileShouldBeOwnerOnlyByDefaultAndFollowTheOption() throws Exception {
        Path plain = dir.resolve("plain.sock");
        try (Rig.Served s = serve(plain, new VhostUserBackend.Options(1, false))) {
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(plain)));
            assertServed(plain);
        }
        Path group = dir.resolve("group.sock");
        try (Rig.Served s = serve(group, new VhostUserBackend.Options(1, false)
                .withSocketMode(PosixFilePermissions.fromString("rw-rw----")))) {
            assertEquals("rw-rw----", PosixFilePermissions.toString(Files.getPosixFilePermissions(group)));
            assertServed(group);
        }
    }

    @Test
    void aPeerOutsideTheAllowListShouldBeClosedBeforeAnyMessage() throws Exception {
        long uid = ourUid();
        Path strict = dir.resolve("strict.sock");
        int before = TestFds.stable();
        try (Rig.Served s = serve(strict, new VhostUserBackend.Options(1, false)
                .withPeers(PeerAllowList.of(Set.of(uid + 4242), Set.of())))) {
            try (VhostUserFrontend fe = VhostUserFrontend.connect(strict)) {
                fe.setReplyTimeoutMillis(10_000);
                assertThrows(IOException.class, fe::getFeatures, "a refused peer gets no answer");
            }
            assertEquals(0, s.server().connections(), "the refused peer was never served");
        }
        assertEquals(before, TestFds.settle(before), "fds after the refusal");
        Path admitting = dir.resolve("admitting.sock");
        try (Rig.Served s = serve(admitting, new VhostUserBackend.Options(1, false)
                .withPeers(PeerAllowList.of(Set.of(uid), Set.of())))) {
            assertServed(admitting);
            assertEquals(1, s.server().connections());
        }
    }

    /**
     * Finding: the one-at-a-time server had no read timeout, so a peer that connected and said nothing held
     * the device forever. Now it is disconnected after the handshake timeout and the next front-end is served.
     */
    @Test
    void aSilentPeerShouldBeDisconnectedAfterTheHandshakeTimeout() throws Exception {
        Path socket = dir.resolve("silent.sock");
        try (Rig.Served s = serve(socket, new VhostUserBackend.Options(1, false)
                .withHandshakeTimeout(Duration.ofMillis(300)))) {
            assertServed(socket); // warm-up before the fd baseline
            while (s.server().backend().isServing()) {
                LockSupport.parkNanos(1_000_000);
            }
            int before = TestFds.stable();
            try (MessageChannel silent = MessageChannel.connect(socket)) {
                silent.setReadTimeoutMillis(10_000);
                MemorySegment one = Arena.ofAuto().allocate(1);
                PeerClosedException closed = assertThrows(PeerClosedException.class, () -> silent.readFully(one),
                        "the back-end closes a silent peer");
                assertEquals(0, closed.bytesRead());
            }
            assertServed(socket);
            while (s.server().backend().isServing()) {
                LockSupport.parkNanos(1_000_000);
            }
            assertEquals(before, TestFds.settle(before), "fds after the silent peer and a clean session");
            // A front-end that negotiates at its own pace after its first message is not cut off.
            try (VhostUserFrontend fe = VhostUserFrontend.connect(socket)) {
                fe.setReplyTimeoutMillis(10_000);
                fe.getFeatures();
                Thread.sleep(600);
                assertTrue((fe.getFeatures() & VirtioFeature.VERSION_1.mask()) != 0, "still served after a pause");
            }
        }
    }

    @Test
    void anInheritedFdThatIsNoSocketShouldBeRefusedAndLeftToItsOwner() throws Exception {
        try (dev.outproc.core.event.EventFd event = dev.outproc.core.event.EventFd.create()) {
            IOException e = assertThrows(IOException.class, () -> VhostUserServer.inherited(RamBlkDevice.ram(1 << 20, 1),
                    new VhostUserBackend.Options(1, false), dev.outproc.core.fd.OwnedFd.of(event.fd())));
            assertEquals("--fd " + event.fd() + " is not a socket (ENOTSOCK)", e.getMessage());
            event.signal();
            assertEquals(1, event.drain(), "the eventfd was not closed: it belongs to someone else");
        }
        IOException e = assertThrows(IOException.class, () -> VhostUserServer.inherited(RamBlkDevice.ram(1 << 20, 1),
                new VhostUserBackend.Options(1, false), dev.outproc.core.fd.OwnedFd.of(987_654)));
        assertEquals("--fd 987654 is not open", e.getMessage());
    }
}
