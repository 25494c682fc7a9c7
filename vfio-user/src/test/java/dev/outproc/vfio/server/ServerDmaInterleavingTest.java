package dev.outproc.vfio.server;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.core.transport.PeerClosedException;
import dev.outproc.core.transport.UnixListener;
import dev.outproc.vfio.client.VfioUserClient;
import dev.outproc.vfio.message.Capabilities;
import dev.outproc.vfio.message.DmaMap;
import dev.outproc.vfio.message.VfioUserCommand;
import dev.outproc.vfio.message.VfioUserHeader;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The server's own DMA_READ/WRITE commands next to the client's commands: on the twin socket when negotiated
 * (vfio-user.rst, "twin_socket"), otherwise interleaved on the one socket with commands queued in order.
 */
class ServerDmaInterleavingTest {
    private static final long WINDOW = 0x20_0000;

    @TempDir
    Path dir;
    SampleDevice device;
    UnixListener listener;
    VfioUserServer server;
    Thread serving;
    Path socket;

    @BeforeEach
    void start() throws Exception {
        device = new SampleDevice();
        socket = dir.resolve("vfio.sock");
        listener = UnixListener.bind(socket);
        server = new VfioUserServer(device, ServerOptions.DEFAULTS.withMessageTimeoutMillis(1000));
        serving = Thread.ofPlatform().daemon().start(() -> server.serve(listener));
    }

    @AfterEach
    void stop() throws Exception {
        listener.close();
        server.disconnectClient();
        serving.join(5000);
    }

    private static byte[] dmaMapWithoutFd(long address, long size) {
        return RawClient.payload(32).putInt(32).putInt(DmaMap.FLAG_READ | DmaMap.FLAG_WRITE).putLong(0).putLong(address).putLong(size).array();
    }

    /** REGION_WRITE of 8 bytes to BAR0 at an offset: 0x28 holds the DMA data, 0x20 the address and starts the DMA. */
    private static byte[] bar0Write(long offset, long value) {
        return RawClient.payload(24).putLong(offset).putInt(SampleDevice.BAR0).putInt(8).putLong(value).array();
    }

    @Test
    void shouldSendServerDmaOnTheTwinSocketWhenTheClientProposesIt() throws Exception {
        try (RawClient c = RawClient.connect(socket)) {
            c.send(1, VfioUserCommand.VERSION.code(), RawClient.version("{\"max_msg_fds\":8,\"twin_socket\":{\"supported\":true}}"));
            RawClient.Message version = c.receive();
            String json = new String(version.payload(), 4, version.payload().length - 5, java.nio.charset.StandardCharsets.UTF_8);
            assertTrue(json.contains("\"twin_socket\":{\"supported\":true,\"fd_index\":0}"), json);
            assertEquals(1, version.fds().count(), "the client's end of the twin socket");
            try (MessageChannel twin = MessageChannel.adopt(version.fds().all().getFirst())) {
                version.fds().close();
                c.send(2, VfioUserCommand.DMA_MAP.code(), dmaMapWithoutFd(WINDOW, 0x1000));
                assertFalse(c.receive().header().isError());
                c.send(3, VfioUserCommand.REGION_WRITE.code(), bar0Write(0x28, 0x1122_3344_5566_7788L));
                assertFalse(c.receive().header().isError());
                c.send(4, VfioUserCommand.REGION_WRITE.code(), bar0Write(0x20, WINDOW + 0x40));

                RawClient.Message dma = RawClient.receive(twin);
                assertEquals(VfioUserCommand.DMA_WRITE.code(), dma.header().command(), "the DMA command came on the twin socket");
                assertFalse(dma.header().isReply());
                ByteBuffer b = dma.body();
                assertEquals(WINDOW + 0x40, b.getLong());
                assertEquals(8, b.getLong());
                assertEquals(0x1122_3344_5566_7788L, b.getLong());
                c.channel.setReadTimeoutMillis(200);
                assertThrows(dev.outproc.core.transport.TransportException.class, c::receive,
                        "the REGION_WRITE waits for the DMA: nothing on the main socket yet");
                c.channel.setReadTimeoutMillis(0);
                twin.write(RawClient.message(dma.header().msgId(), VfioUserCommand.DMA_WRITE.code(), VfioUserHeader.TYPE_REPLY,
                        RawClient.payload(16).putLong(WINDOW + 0x40).putLong(8).array()));
                RawClient.Message done = c.receive();
                assertEquals(4, done.header().msgId());
                assertFalse(done.header().isError(), "the DMA completed, then the command");
            }
        }
    }

    /**
     * A DMA reply that stops partway leaves the twin socket between message boundaries: nothing more can be read
     * from it, so the server closes it and the connection (the device's DMA cannot go on) instead of reading the
     * rest of that reply as the next one.
     */
    @Test
    void aReplyThatStopsPartwayOnTheTwinSocketShouldCloseTheConnection() throws Exception {
        try (RawClient c = RawClient.connect(socket)) {
            c.send(1, VfioUserCommand.VERSION.code(), RawClient.version("{\"max_msg_fds\":8,\"twin_socket\":{\"supported\":true}}"));
            RawClient.Message version = c.receive();
            assertEquals(1, version.fds().count(), "the client's end of the twin socket");
            try (MessageChannel twin = MessageChannel.adopt(version.fds().all().getFirst())) {
                version.fds().close();
                c.send(2, VfioUserCommand.DMA_MAP.code(), dmaMapWithoutFd(WINDOW, 0x1000));
                assertFalse(c.receive().header().isError());
                c.send(3, VfioUserCommand.REGION_WRITE.code(), bar0Write(0x20, WINDOW + 0x40));
                RawClient.Message dma = RawClient.receive(twin);
                assertEquals(VfioUserCommand.DMA_WRITE.code(), dma.header().command());
                MemorySegment reply = RawClient.message(dma.header().msgId(), VfioUserCommand.DMA_WRITE.code(),
                        VfioUserHeader.TYPE_REPLY, RawClient.payload(16).putLong(WINDOW + 0x40).putLong(8).array());
                twin.write(reply.asSlice(0, VfioUserHeader.ENCODED_LENGTH + 4)); // then silence

                twin.setReadTimeoutMillis(30_000);
                assertThrows(PeerClosedException.class, () -> RawClient.receive(twin), "the server closed the twin socket");
                c.channel.setReadTimeoutMillis(30_000);
                // The connection ends; at most an error reply to the doorbell write whose DMA failed comes first.
                try {
                    RawClient.Message answer = c.receive();
                    assertEquals(3, answer.header().msgId());
                    assertTrue(answer.header().isError(), "the doorbell write whose DMA failed gets an error");
                    assertThrows(PeerClosedException.class, c::receive, "then the connection ends");
                } catch (PeerClosedException expected) {
                    // closed without a reply: allowed
                }
            }
        }
    }

    @Test
    void shouldQueueCommandsThatArriveWhileTheServerWaitsForItsDmaReply() throws Exception {
        try (RawClient c = RawClient.connect(socket)) {
            c.send(1, VfioUserCommand.VERSION.code(), RawClient.version("{\"max_msg_fds\":8}"));
            RawClient.Message version = c.receive();
            assertEquals(0, version.fds().count(), "no twin socket unless proposed");
            c.send(2, VfioUserCommand.DMA_MAP.code(), dmaMapWithoutFd(WINDOW, 0x1000));
            assertFalse(c.receive().header().isError());
            c.send(3, VfioUserCommand.REGION_WRITE.code(), bar0Write(0x28, 0x0102_0304_0506_0708L));
            assertFalse(c.receive().header().isError());
            c.send(4, VfioUserCommand.REGION_WRITE.code(), bar0Write(0x20, WINDOW + 0x80));
            c.send(5, VfioUserCommand.DEVICE_GET_INFO.code(), RawClient.payload(16).putInt(16).array());
            c.send(6, VfioUserCommand.REGION_READ.code(), RawClient.payload(16).putLong(0x28).putInt(SampleDevice.BAR0).putInt(8).array());

            RawClient.Message dma = c.receive();
            assertEquals(VfioUserCommand.DMA_WRITE.code(), dma.header().command(), "the server's DMA comes first");
            assertFalse(dma.header().isReply());
            c.channel.write(RawClient.message(dma.header().msgId(), VfioUserCommand.DMA_WRITE.code(), VfioUserHeader.TYPE_REPLY,
                    RawClient.payload(16).putLong(WINDOW + 0x80).putLong(8).array()));
            for (int id = 4; id <= 6; id++) {
                RawClient.Message r = c.receive();
                assertEquals(id, r.header().msgId(), "replies in command order");
                assertTrue(r.header().isReply());
                assertFalse(r.header().isError());
                if (id == 6) {
                    assertEquals(0x0102_0304_0506_0708L, r.body().getLong(16), "the queued command saw the device's state");
                }
            }
        }
    }

    @ParameterizedTest(name = "twin socket {0}")
    @ValueSource(booleans = {false, true})
    void shouldServeDeviceThreadDmaWhileTheClientSendsCommands(boolean twin) throws Exception {
        long seed = 20261129L + (twin ? 1 : 0);
        System.out.println("ServerDmaInterleavingTest seed=" + seed);
        try (VfioUserClient c = VfioUserClient.connect(socket); GuestRegion ram = GuestRegion.allocate(WINDOW, 0x4000, 0)) {
            c.negotiate(Capabilities.builder().maxMsgFds(8).twinSocket(twin, -1).build());
            assertEquals(twin, c.twinSocket());
            assertEquals(twin, server.currentSession().twinSocket());
            c.serveDmaFrom(GuestMemory.of(List.of(ram)));
            c.dmaMap(WINDOW, 0x4000, DmaMap.FLAG_READ | DmaMap.FLAG_WRITE, null, 0);
            DmaSpace dma = server.currentSession().dma();
            List<Throwable> failures = new CopyOnWriteArrayList<>();
            AtomicBoolean stop = new AtomicBoolean();
            AtomicLong transfers = new AtomicLong();
            Thread deviceThread = Thread.ofPlatform().start(() -> {
                Random r = new Random(seed);
                try (Arena a = Arena.ofConfined()) {
                    MemorySegment out = a.allocate(64);
                    MemorySegment in = a.allocate(64);
                    while (!stop.get()) {
                        long at = WINDOW + 64L * r.nextInt(0x4000 / 64);
                        for (int i = 0; i < 64; i++) {
                            out.set(ValueLayout.JAVA_BYTE, i, (byte) r.nextInt());
                        }
                        dma.write(at, out);
                        dma.read(at, in);
                        if (in.mismatch(out) >= 0) {
                            throw new AssertionError("read back differs at 0x" + Long.toHexString(at));
                        }
                        transfers.incrementAndGet();
                    }
                } catch (Throwable t) {
                    failures.add(t);
                }
            });
            try (Arena a = Arena.ofConfined()) {
                MemorySegment v = a.allocate(8);
                for (int i = 0; i < 300 && failures.isEmpty(); i++) {
                    v.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, i);
                    c.regionWrite(SampleDevice.BAR0, 0x80, v);
                    v.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, -1);
                    c.regionRead(SampleDevice.BAR0, 0x80, v);
                    assertEquals(i, v.get(ValueLayout.JAVA_LONG_UNALIGNED, 0), "command " + i + " answered correctly");
                    if (!twin) {
                        // without a twin socket the client answers server commands only while it waits for a reply
                        c.serveServerCommands(1);
                    }
                }
            } finally {
                stop.set(true);
                if (!twin) {
                    // let the device thread finish its last access: answer until it stops
                    while (deviceThread.isAlive()) {
                        c.serveServerCommands(50);
                    }
                }
                deviceThread.join(10_000);
            }
            assertTrue(failures.isEmpty(), () -> "device thread failed: " + failures);
            assertTrue(transfers.get() > 0, "the device thread moved data");
        }
    }

    private static <T extends Throwable> T assertThrows(Class<T> type, org.junit.jupiter.api.function.Executable e, String message) {
        return org.junit.jupiter.api.Assertions.assertThrows(type, e, message);
    }
}
