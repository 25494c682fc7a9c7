package dev.outproc.vfio.server;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.fd.Errno;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.MemFd;
import dev.outproc.core.transport.UnixListener;
import dev.outproc.vfio.client.VfioUserClient;
import dev.outproc.vfio.message.Capabilities;
import dev.outproc.vfio.message.DeviceFeature;
import dev.outproc.vfio.message.DmaMap;
import dev.outproc.vfio.message.VfioUserCommand;
import dev.outproc.vfio.message.VfioUserHeader;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One test per attack of issue 9's list: each gets the errno it deserves, or that connection alone is closed; after
 * each, the next client is served by a reset device and the process holds no more fds than before.
 */
class HostileClientTest {
    private static final int SEND_TIMEOUT_MILLIS = 300;
    private static final int MESSAGE_TIMEOUT_MILLIS = 300;

    @TempDir
    Path dir;
    SampleDevice device;
    UnixListener listener;
    VfioUserServer server;
    Thread serving;
    Path socket;
    long fdsBefore;

    @BeforeEach
    void start() throws Exception {
        device = new SampleDevice();
        socket = dir.resolve("vfio.sock");
        listener = UnixListener.bind(socket);
        server = new VfioUserServer(device, ServerOptions.DEFAULTS.withMessageTimeoutMillis(MESSAGE_TIMEOUT_MILLIS)
                .withSendTimeoutMillis(SEND_TIMEOUT_MILLIS));
        serving = Thread.ofPlatform().daemon().start(() -> server.serve(listener));
        fdsBefore = RawClient.openFds();
    }

    /** After every attack: the next client is served and no fd stayed behind. */
    @AfterEach
    void nextClientIsServedAndNothingLeaks() throws Exception {
        try {
            try (VfioUserClient c = VfioUserClient.connect(socket)) {
                c.negotiate(Capabilities.builder().maxMsgFds(8).build());
                assertEquals(9, c.deviceInfo().numRegions(), "the next client is served");
            }
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (RawClient.openFds() > fdsBefore && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertTrue(RawClient.openFds() <= fdsBefore, "fds leaked: " + fdsBefore + " -> " + RawClient.openFds());
        } finally {
            listener.close();
            server.disconnectClient();
            serving.join(5000);
        }
    }

    private static RawClient negotiated(Path socket) throws IOException {
        RawClient c = RawClient.connect(socket);
        c.send(1, VfioUserCommand.VERSION.code(), RawClient.version("{\"max_msg_fds\":8}"));
        assertFalse(c.receive().header().isError());
        return c;
    }

    private static long errno(RawClient c, int msgId) throws IOException {
        RawClient.Message r = c.receive();
        assertEquals(msgId, r.header().msgId());
        assertTrue(r.header().isReply() && r.header().isError(), "an error reply");
        return r.header().error();
    }

    private static void assertClosedByServer(RawClient c) {
        assertThrows(IOException.class, () -> c.channel.readFully(Arena.ofAuto().allocate(1)), "the server closed this connection");
    }

    @Test
    void shouldRefuseWrongPayloadSizes() throws Exception {
        try (RawClient c = negotiated(socket)) {
            c.send(2, VfioUserCommand.DEVICE_GET_INFO.code(), new byte[12]);
            assertEquals(Errno.EINVAL, errno(c, 2), "GET_INFO shorter than its 16 bytes");
            c.send(3, VfioUserCommand.DMA_MAP.code(), new byte[40]);
            assertEquals(Errno.EINVAL, errno(c, 3), "DMA_MAP longer than its 32 bytes");
        }
    }

    @Test
    void shouldCloseAConnectionWhoseHeaderSizeIsBelowTheHeader() throws Exception {
        try (RawClient c = negotiated(socket)) {
            MemorySegment bad = RawClient.message(2, VfioUserCommand.DEVICE_GET_INFO.code(), 0, new byte[0]);
            new VfioUserHeader.Encoder().wrap(bad, 0).size(8);
            c.channel.write(bad);
            assertEquals(Errno.EINVAL, errno(c, 2));
            assertClosedByServer(c);
        }
    }

    @Test
    void shouldAnswerUnknownAndRetiredCommands() throws Exception {
        try (RawClient c = negotiated(socket)) {
            c.send(2, 99, new byte[0]);
            assertEquals(Errno.ENOSYS, errno(c, 2), "unknown command");
            c.send(3, 14, new byte[0]);
            assertEquals(Errno.ENOTSUP, errno(c, 3), "retired command 14");
        }
    }

    @Test
    void shouldRefuseCommandsBeforeVersion() throws Exception {
        try (RawClient c = RawClient.connect(socket)) {
            c.send(1, VfioUserCommand.DEVICE_GET_INFO.code(), RawClient.payload(16).putInt(16).array());
            assertEquals(Errno.EINVAL, errno(c, 1));
            c.send(2, VfioUserCommand.DEVICE_RESET.code(), new byte[0]);
            assertEquals(Errno.EINVAL, errno(c, 2));
        }
    }

    @Test
    void shouldRefuseAndCloseTooManyFds() throws Exception {
        List<EventFd> many = new ArrayList<>();
        try (RawClient c = negotiated(socket)) {
            for (int i = 0; i < 20; i++) {
                many.add(EventFd.create());
            }
            byte[] setIrqs = RawClient.payload(20).putInt(20).putInt(0x24).putInt(Interrupts.MSIX).putInt(0).putInt(20).array();
            c.send(2, VfioUserCommand.DEVICE_SET_IRQS.code(), setIrqs, many.stream().map(EventFd::owner).toList());
            assertEquals(Errno.EINVAL, errno(c, 2), "20 fds, over the server's max_msg_fds of 16");
            try (EventFd one = EventFd.create()) {
                c.send(3, VfioUserCommand.DEVICE_RESET.code(), new byte[0], List.of(one.owner()));
                assertEquals(Errno.EINVAL, errno(c, 3), "an fd with a command that takes none");
            }
            assertEquals(0, server.currentSession().interrupts().installedCount(), "nothing installed");
        } finally {
            many.forEach(EventFd::close);
        }
    }

    @Test
    void shouldRefuseOverlappingDmaMaps() throws Exception {
        try (VfioUserClient c = client(); OwnedFd fd = MemFd.create("dma", 0x4000)) {
            c.dmaMap(0x4000, 0x4000, DmaMap.FLAG_READ, fd, 0);
            assertEquals(Errno.EEXIST, errnoOf(() -> c.dmaMap(0x6000, 0x4000, DmaMap.FLAG_READ, fd, 0)), "overlaps the end");
            assertEquals(Errno.EEXIST, errnoOf(() -> c.dmaMap(0x2000, 0x4000, DmaMap.FLAG_READ, fd, 0)), "overlaps the start");
            assertEquals(Errno.EEXIST, errnoOf(() -> c.dmaMap(0x5000, 0x1000, DmaMap.FLAG_READ, fd, 0)), "inside");
            assertEquals(1, server.currentSession().dma().windows().size());
        }
    }

    @Test
    void shouldUnmapAWindowInUseOnlyOnceNoDeviceThreadIsInsideIt() throws Exception {
        try (VfioUserClient c = client(); OwnedFd fd = MemFd.create("dma", 0x10_0000)) {
            c.dmaMap(0x10_0000, 0x10_0000, DmaMap.FLAG_READ | DmaMap.FLAG_WRITE, fd, 0);
            DmaSpace dma = server.currentSession().dma();
            AtomicLong before = new AtomicLong();
            AtomicReference<Throwable> after = new AtomicReference<>();
            Thread deviceThread = Thread.ofPlatform().start(() -> {
                try (Arena a = Arena.ofConfined()) {
                    MemorySegment buffer = a.allocate(0x10_0000);
                    while (true) {
                        dma.write(0x10_0000, buffer);
                        before.incrementAndGet();
                    }
                } catch (Throwable t) {
                    after.set(t);
                }
            });
            while (before.get() < 3) {
                Thread.onSpinWait();
            }
            assertEquals(Errno.ENOENT, errnoOf(() -> c.dmaUnmap(0x10_0000, 0x8000)), "only whole windows unmap");
            c.dmaUnmap(0x10_0000, 0x10_0000);
            deviceThread.join(5000);
            assertTrue(after.get() instanceof dev.outproc.vfio.message.VfioUserProtocolException e && e.errno() == Errno.EFAULT,
                    "the device's next access after the unmap fails with EFAULT, never touches unmapped memory: " + after.get());
            assertEquals(0, dma.windows().size());
            assertEquals(9, c.deviceInfo().numRegions(), "the connection still serves");
        }
    }

    @Test
    void shouldRefuseRegionAccessOutOfBounds() throws Exception {
        try (VfioUserClient c = client(); Arena a = Arena.ofConfined()) {
            assertEquals(Errno.EINVAL, errnoOf(() -> c.regionRead(SampleDevice.BAR0, 0xFC, a.allocate(8))), "crosses the end");
            assertEquals(Errno.EINVAL, errnoOf(() -> c.regionWrite(SampleDevice.BAR0, 0x100, a.allocate(1))), "starts past the end");
            assertEquals(Errno.EINVAL, errnoOf(() -> c.regionRead(5, 0, a.allocate(4))), "an absent region");
            assertEquals(Errno.EINVAL, errnoOf(() -> c.regionRead(42, 0, a.allocate(4))), "no such region index");
        }
        try (RawClient c = negotiated(socket)) {
            c.send(2, VfioUserCommand.REGION_READ.code(), RawClient.payload(16).putLong(-8L).putInt(SampleDevice.BAR0).putInt(16).array());
            assertEquals(Errno.EINVAL, errno(c, 2), "an offset whose sum with the count wraps");
        }
    }

    @Test
    void shouldRefuseInvalidMigrationArcs() throws Exception {
        try (VfioUserClient c = client(); Arena a = Arena.ofConfined()) {
            assertEquals(Errno.EINVAL, errnoOf(() -> c.readMigrationData(a.allocate(16))), "MIG_DATA_READ while RUNNING");
            assertEquals(Errno.EINVAL, errnoOf(() -> c.writeMigrationData(a.allocate(16))), "MIG_DATA_WRITE while RUNNING");
            assertEquals(Errno.EINVAL, errnoOf(() -> c.migrationState(MigrationState.ERROR.code())), "ERROR cannot be requested");
            assertEquals(Errno.EINVAL, errnoOf(() -> c.migrationState(9)), "no state 9");
            assertEquals(Errno.EINVAL, errnoOf(() -> c.migrationState(MigrationState.RUNNING_P2P.code())), "P2P not offered");
            assertEquals(MigrationState.STOP_COPY.code(), c.migrationState(MigrationState.STOP_COPY.code()));
            assertEquals(Errno.EINVAL, errnoOf(() -> c.migrationState(MigrationState.PRE_COPY.code())), "STOP_COPY -> PRE_COPY");
            assertEquals(Errno.EINVAL, errnoOf(() -> c.writeMigrationData(a.allocate(16))), "MIG_DATA_WRITE while saving");
            assertEquals(MigrationState.STOP_COPY.code(), c.migrationState(-1), "refused requests leave the state alone");
        }
    }

    @Test
    void shouldRefuseDeviceFeatureWithShortPayloads() throws Exception {
        try (RawClient c = negotiated(socket)) {
            c.send(2, VfioUserCommand.DEVICE_FEATURE.code(), new byte[6]);
            assertEquals(Errno.EINVAL, errno(c, 2), "shorter than argsz and flags");
            c.send(3, VfioUserCommand.DEVICE_FEATURE.code(),
                    RawClient.payload(10).putInt(10).putInt((int) (DeviceFeature.SET | DeviceFeature.MIG_DEVICE_STATE)).putShort((short) 2).array());
            assertEquals(Errno.EINVAL, errno(c, 3), "MIG_DEVICE_STATE SET with 2 of its 8 bytes");
            c.send(4, VfioUserCommand.DEVICE_FEATURE.code(), RawClient.payload(24).putInt(24)
                    .putInt((int) (DeviceFeature.SET | DeviceFeature.DMA_LOGGING_START)).putLong(4096).putInt(4).putInt(0).array());
            assertEquals(Errno.EINVAL, errno(c, 4), "DMA_LOGGING_START announcing 4 ranges and carrying none");
            c.send(5, VfioUserCommand.DEVICE_FEATURE.code(), RawClient.payload(16).putInt(16)
                    .putInt((int) (DeviceFeature.GET | DeviceFeature.DMA_LOGGING_REPORT)).putLong(0).array());
            assertEquals(Errno.EINVAL, errno(c, 5), "DMA_LOGGING_REPORT without its page size");
        }
    }

    @Test
    void shouldCloseTheConnectionOfAClientThatNeverReadsReplies() throws Exception {
        try (RawClient c = negotiated(socket)) {
            // REGION_READs of 64 KiB each, never read: the socket fills, the server's send times out.
            byte[] read = RawClient.payload(16).putLong(0).putInt(SampleDevice.BAR1).putInt(0x4000).array();
            long deadline = System.nanoTime() + 20_000_000_000L;
            int sent = 0;
            try {
                c.channel.setWriteTimeoutMillis(100);
                while (System.nanoTime() < deadline) {
                    c.send(2 + (sent & 0x7FFF), VfioUserCommand.REGION_READ.code(), read);
                    sent++;
                }
            } catch (IOException expected) {
                // the server stopped reading us: its send timed out and it closed the connection, or our socket is full
            }
            assertTrue(sent > 4, "commands went out before the socket filled: " + sent);
            long waitUntil = System.nanoTime() + 10_000_000_000L;
            while (server.currentSession() != null && System.nanoTime() < waitUntil) {
                Thread.sleep(20);
            }
            assertEquals(null, server.currentSession(), "the session ended after the send timeout");
        }
    }

    @Test
    void shouldCloseAPartialMessageAfterSilence() throws Exception {
        try (RawClient c = RawClient.connect(socket)) {
            MemorySegment version = RawClient.message(1, VfioUserCommand.VERSION.code(), 0, RawClient.version("{}"));
            c.channel.write(version.asSlice(0, 20));
            long start = System.nanoTime();
            assertClosedByServer(c);
            assertTrue(System.nanoTime() - start >= (MESSAGE_TIMEOUT_MILLIS - 50) * 1_000_000L, "closed after the timeout, not at once");
        }
    }

    private VfioUserClient client() throws IOException {
        VfioUserClient c = VfioUserClient.connect(socket);
        c.negotiate(Capabilities.builder().maxMsgFds(8).build());
        return c;
    }

    interface Call {
        void run() throws Exception;
    }

    private static int errnoOf(Call call) {
        return assertThrows(dev.outproc.vfio.message.VfioUserProtocolException.class, call::run).errno();
    }
}
