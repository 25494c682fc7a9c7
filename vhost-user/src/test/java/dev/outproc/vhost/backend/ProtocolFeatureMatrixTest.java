package dev.outproc.vhost.backend;

import dev.outproc.vhost.message.VhostUserFeature;
import dev.outproc.core.event.EventFd;
import dev.outproc.core.fd.FdChannel;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.DirtyLog;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.memory.MemFd;
import dev.outproc.core.memory.SharedMapping;
import dev.outproc.core.virtqueue.QueueConfig;
import dev.outproc.vhost.frontend.FrontendException;
import dev.outproc.vhost.frontend.VhostUserFrontend;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.core.virtio.VirtioFeature;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;

import static dev.outproc.core.memory.Layouts.LE_U16;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Our front-end against our back-end, in-process over a real Unix socket and memfd memory, with each
 * protocol feature negotiated on and off. Data is seeded random; the seed is in every failure message.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ProtocolFeatureMatrixTest {
    private static final long MEMORY = 4L << 20;
    private static final int QUEUES = 4;
    private static final long BASE_FEATURES = VirtioFeature.VERSION_1.mask();

    @TempDir
    Path dir;

    private Path socket;
    private RamBlkDevice device;
    private Rig.Served served;
    private long seed;
    private SplittableRandom random;

    @BeforeEach
    void start() throws IOException {
        seed = System.nanoTime();
        random = new SplittableRandom(seed);
        socket = dir.resolve("matrix.sock");
        device = RamBlkDevice.ram(1 << 20, QUEUES);
        served = Rig.serve(socket, device);
    }

    @AfterEach
    void stop() throws InterruptedException {
        served.close();
    }

    private VhostUserBackend backend() {
        return served.server().backend();
    }

    private static long protocol(ProtocolFeature... f) {
        return ProtocolFeature.maskOf(f);
    }

    private static void waitFor(BooleanSupplier condition, Object what) {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                fail("timed out waiting for " + what);
            }
            LockSupport.parkNanos(1_000_000);
        }
    }

    /** Writes random blocks through {@code writer}, reads them back through {@code reader}, pipelined up to the slot count. */
    private void exchange(Rig.Ring writer, Rig.Ring reader, int requests, boolean indirect) throws IOException {
        int slots = writer.slotGpa.length;
        for (int i = 0; i < requests; i += slots) {
            int batch = Math.min(slots, requests - i);
            byte[][] data = new byte[batch][];
            long[] sectors = new long[batch];
            for (int s = 0; s < batch; s++) {
                data[s] = new byte[512 * (1 + random.nextInt(writer.maxData / 512))];
                random.nextBytes(data[s]);
                sectors[s] = 64L * (i + s) % 2000; // disjoint 32 KiB areas
                MemorySegment.copy(data[s], 0, writer.data(s), ValueLayout.JAVA_BYTE, 0, data[s].length);
                writer.submit(s, RamBlkDevice.T_OUT, sectors[s], data[s].length, false, indirect && s % 2 == 0);
            }
            writer.kick();
            for (int s = 0; s < batch; s++) {
                int done = writer.await(10_000);
                assertEquals(RamBlkDevice.S_OK, writer.status(done), "write status, seed=" + seed);
            }
            for (int s = 0; s < batch; s++) {
                reader.submit(s, RamBlkDevice.T_IN, sectors[s], data[s].length, true, indirect && s % 2 == 1);
            }
            reader.kick();
            for (int s = 0; s < batch; s++) {
                int done = reader.await(10_000);
                assertEquals(RamBlkDevice.S_OK, reader.status(done), "read status, seed=" + seed);
                byte[] back = new byte[data[done].length];
                MemorySegment.copy(reader.data(done), ValueLayout.JAVA_BYTE, 0, back, 0, back.length);
                assertArrayEquals(data[done], back, "read back, seed=" + seed);
            }
        }
    }

    static Stream<Arguments> ringMatrix() {
        List<Arguments> list = new ArrayList<>();
        for (boolean protocolBit : new boolean[] {false, true}) {
            for (boolean replyAck : new boolean[] {false, true}) {
                if (replyAck && !protocolBit) {
                    continue; // REPLY_ACK is a protocol feature
                }
                for (boolean packed : new boolean[] {false, true}) {
                    for (boolean eventIdx : new boolean[] {false, true}) {
                        for (boolean indirect : new boolean[] {false, true}) {
                            list.add(Arguments.of(protocolBit, replyAck, packed, eventIdx, indirect));
                        }
                    }
                }
            }
        }
        return list.stream();
    }

    @ParameterizedTest(name = "F_PROTOCOL_FEATURES={0} REPLY_ACK={1} packed={2} EVENT_IDX={3} INDIRECT={4}")
    @MethodSource("ringMatrix")
    void ioShouldWorkWithEveryRingAndNegotiationVariant(boolean protocolBit, boolean replyAck, boolean packed,
                                                       boolean eventIdx, boolean indirect) throws Exception {
        long features = BASE_FEATURES | (packed ? VirtioFeature.RING_PACKED.mask() : 0)
                | (eventIdx ? VirtioFeature.EVENT_IDX.mask() : 0) | (indirect ? VirtioFeature.INDIRECT_DESC.mask() : 0);
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.negotiate(features, protocolBit, replyAck ? protocol(ProtocolFeature.REPLY_ACK) : 0);
            assertEquals(features | (protocolBit ? VhostUserFeature.PROTOCOL_FEATURES.mask() : 0), acked);
            rig.fe.getFeatures(); // a round trip: without REPLY_ACK nothing else says SET_FEATURES was handled
            assertEquals(acked, backend().negotiatedFeatures());
            assertEquals(replyAck ? protocol(ProtocolFeature.REPLY_ACK) : 0, backend().negotiatedProtocolFeatures());
            if (!protocolBit) {
                // vhost-user.rst "Ring states": without F_PROTOCOL_FEATURES rings are enabled from the start.
                assertTrue(backend().ring(0).isEnabled(), "ring enabled by SET_FEATURES");
            } else {
                assertFalse(backend().ring(0).isEnabled(), "ring disabled until SET_VRING_ENABLE");
            }
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, packed ? 64 : 32, acked, 4, 8192);
            Rig.Setup setup = protocolBit ? Rig.Setup.standard() : Rig.Setup.standard().withoutEnable();
            rig.program(ring, setup);
            // Enough requests to wrap a ring of 32 or 64 descriptors several times.
            exchange(ring, ring, 96, indirect);
            assertEquals(0, ring.err.drain(), "no ring error, seed=" + seed);
        }
    }

    @Test
    void multiQueueShouldServeEveryQueue() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.negotiate(BASE_FEATURES, true, protocol(ProtocolFeature.MQ, ProtocolFeature.REPLY_ACK));
            assertEquals(QUEUES, rig.fe.getQueueNum());
            rig.setMemTable();
            Rig.Ring[] rings = new Rig.Ring[QUEUES];
            for (int q = 0; q < QUEUES; q++) {
                rings[q] = rig.ring(q, 16, acked, 2, 4096);
                rig.program(rings[q], Rig.Setup.standard());
            }
            for (int q = 0; q < QUEUES; q++) {
                // Write on one queue, read on the next: the queues share the device's store.
                exchange(rings[q], rings[(q + 1) % QUEUES], 6, false);
            }
            for (int q = 0; q < QUEUES; q++) {
                assertTrue(device.events.contains("started " + q), "queue " + q + " started: " + device.events);
            }
        }
    }

    @Test
    void getQueueNumWithoutMqShouldStillAnswerButRingsBeyondTheFirstNeedMq() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            rig.negotiate(BASE_FEATURES, true, protocol(ProtocolFeature.REPLY_ACK));
            assertEquals(0, backend().negotiatedProtocolFeatures() & ProtocolFeature.MQ.mask());
            assertThrows(FrontendException.class, () -> rig.fe.setVringNum(QUEUES, 16), "ring index beyond the device's queues");
        }
    }

    @Test
    void configShouldBeReadableAndChangeNotificationsDelivered() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            rig.negotiate(BASE_FEATURES, true, protocol(ProtocolFeature.CONFIG, ProtocolFeature.REPLY_ACK,
                    ProtocolFeature.BACKEND_REQ));
            byte[] capacity = rig.fe.getConfig(0, 8);
            assertEquals((1 << 20) / 512, ByteBuffer.wrap(capacity).order(ByteOrder.LITTLE_ENDIAN).getLong());
            assertThrows(FrontendException.class, () -> rig.fe.getConfig(4, 8), "read past the config space");
            assertThrows(FrontendException.class, () -> rig.fe.setConfig(0, new byte[8]), "read-only config space");
            AtomicInteger changes = new AtomicInteger();
            rig.fe.openBackendChannel(new VhostUserFrontend.BackendRequestHandler() {
                @Override
                public void configChanged() {
                    changes.incrementAndGet();
                }
            });
            backend().notifyConfigChanged();
            backend().notifyConfigChanged();
            waitFor(() -> changes.get() == 2, "two CONFIG_CHANGE_MSG");
        }
    }

    @Test
    void aFailingBackendRequestHandlerShouldNotEndTheBackEndChannel() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            rig.negotiate(BASE_FEATURES, true, protocol(ProtocolFeature.CONFIG, ProtocolFeature.REPLY_ACK,
                    ProtocolFeature.BACKEND_REQ));
            AtomicInteger changes = new AtomicInteger();
            rig.fe.openBackendChannel(new VhostUserFrontend.BackendRequestHandler() {
                @Override
                public void configChanged() {
                    if (changes.incrementAndGet() == 1) {
                        throw new IllegalStateException("a handler bug");
                    }
                }
            });
            backend().notifyConfigChanged();
            backend().notifyConfigChanged();
            waitFor(() -> changes.get() == 2, "the second CONFIG_CHANGE_MSG after a failing handler");
        }
    }

    @Test
    void configWithoutTheFeatureShouldAnswerEmpty() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            rig.negotiate(BASE_FEATURES, true, protocol(ProtocolFeature.REPLY_ACK));
            assertThrows(FrontendException.class, () -> rig.fe.getConfig(0, 8));
            assertTrue((rig.fe.getFeatures() & VirtioFeature.VERSION_1.mask()) != 0, "still serving");
        }
    }

    @Test
    void memorySlotsShouldBeAddedAndRemoved() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.negotiate(BASE_FEATURES, true, protocol(ProtocolFeature.CONFIGURE_MEM_SLOTS,
                    ProtocolFeature.REPLY_ACK));
            assertEquals(VhostUserBackend.MAX_MEM_SLOTS, rig.fe.getMaxMemSlots());
            rig.fe.addMemRegion(rig.regions.get(0));
            Rig.Ring ring = rig.ring(0, 16, acked, 2, 4096);
            rig.program(ring, Rig.Setup.standard());
            exchange(ring, ring, 4, false);
            GuestRegion extra = rig.addRegion(1 << 20);
            rig.fe.addMemRegion(extra);
            assertEquals(2, backend().memory().regionCount());
            // A write whose data lies in the added region.
            byte[] data = new byte[4096];
            random.nextBytes(data);
            MemorySegment.copy(data, 0, extra.segment(), ValueLayout.JAVA_BYTE, 0, data.length);
            int done = submitWithDataAt(ring, RamBlkDevice.T_OUT, 8, extra.guestPhysAddr(), data.length, false);
            assertEquals(RamBlkDevice.S_OK, ring.status(done), "seed=" + seed);
            assertArrayEquals(data, device.store().asSlice(8 * 512, data.length).toArray(ValueLayout.JAVA_BYTE), "seed=" + seed);
            rig.fe.removeMemRegion(extra);
            assertEquals(1, backend().memory().regionCount());
            assertThrows(FrontendException.class, () -> rig.fe.removeMemRegion(extra), "no such region any more");
            // A buffer in the removed region is outside memory now: the ring breaks, nothing is served.
            ring.dq.add(ring.headerGpa(0), 16, false);
            ring.dq.add(extra.guestPhysAddr(), 512, false);
            ring.dq.add(ring.statusGpa(0), 1, true);
            ring.idOfSlot[0] = ring.dq.post(false);
            ring.kick();
            waitFor(() -> drain(ring.err) > 0, "ring error after a buffer in a removed region");
            assertEquals(-1, ring.poll(100));
        }
    }

    private static long drain(EventFd fd) {
        try {
            return fd.drain();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static int submitWithDataAt(Rig.Ring ring, int type, long sector, long dataGpa, int bytes, boolean deviceWrites)
            throws IOException {
        ring.submitAt(0, type, sector, dataGpa, bytes, deviceWrites, false);
        ring.kick();
        return ring.await(10_000);
    }

    @Test
    void inbandNotificationsShouldCarryKicksAndCalls() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            // No EVENT_IDX: then every batch of completions asks for a call (the driver never sets NO_INTERRUPT).
            long acked = rig.negotiate(BASE_FEATURES, true, protocol(
                    ProtocolFeature.INBAND_NOTIFICATIONS, ProtocolFeature.BACKEND_REQ, ProtocolFeature.REPLY_ACK));
            AtomicInteger calls = new AtomicInteger();
            rig.fe.openBackendChannel(index -> {
                assertEquals(0, index);
                calls.incrementAndGet();
            });
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, acked, 4, 4096);
            // A kick fd that is never signalled (so no polling), no call fd: both ways are in-band.
            rig.program(ring, Rig.Setup.standard().withoutCallFd());
            ring.inbandKick = true;
            exchange(ring, ring, 12, false);
            // Each completion's call arrives: wait for the call first, then reap. (Calls not yet sent coalesce,
            // so one request at a time, each waited for, gives one call each.)
            int beforeLoop = calls.get();
            for (int i = 0; i < 8; i++) {
                int before = calls.get();
                ring.submit(0, RamBlkDevice.T_GET_ID, 0, 20, true, false);
                ring.kick();
                long theSeed = seed;
                int round = i;
                waitFor(() -> calls.get() > before, new Object() {
                    @Override
                    public String toString() {
                        return "the in-band VRING_CALL of request " + round + " (calls " + calls + "), seed=" + theSeed;
                    }
                });
                assertEquals(0, ring.await(10_000));
                assertEquals(RamBlkDevice.S_OK, ring.status(0));
            }
            // A call of the exchange above may have been counted for a request here: in total, eight more.
            waitFor(() -> calls.get() >= beforeLoop + 8, "eight in-band calls for eight requests, seed=" + seed);
            assertEquals(0, ring.kick.drain(), "the kick fd was never used");
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void dirtyLogShouldMarkExactlyThePagesTheDeviceWrote(boolean packed) throws Exception {
        long logBytes = DirtyLog.bitmapBytesFor(Rig.GUEST_BASE + MEMORY, DirtyLog.DEFAULT_PAGE_SIZE);
        logBytes = (logBytes + 7) & ~7L;
        try (Rig rig = Rig.connect(socket, MEMORY);
             OwnedFd logFd = MemFd.create("test-dirty-log", logBytes);
             SharedMapping logMap = SharedMapping.map(logFd.get(), 0, logBytes, true)) {
            long features = BASE_FEATURES | VirtioFeature.EVENT_IDX.mask() | (packed ? VirtioFeature.RING_PACKED.mask() : 0);
            long acked = rig.negotiate(features, true, protocol(ProtocolFeature.LOG_SHMFD, ProtocolFeature.REPLY_ACK));
            rig.setMemTable();
            rig.fe.setLogBase(logFd, logBytes, 0);
            Rig.Ring ring = rig.ring(0, 16, acked, 4, 16384);
            rig.program(ring, Rig.Setup.standard().withLogUsed());
            DirtyLog view = DirtyLog.over(logMap.segment(), DirtyLog.DEFAULT_PAGE_SIZE);
            exchange(ring, ring, 4, false);
            assertEquals(0, view.readAndClear(p -> { }), "nothing is logged before F_LOG_ALL");

            rig.fe.setFeatures(acked | VhostUserFeature.LOG_ALL.mask());
            // A write (device writes its status byte) and a read of 2.5 pages (device writes data + status).
            byte[] data = new byte[10240];
            random.nextBytes(data);
            MemorySegment.copy(data, 0, ring.data(0), ValueLayout.JAVA_BYTE, 0, data.length);
            ring.submit(0, RamBlkDevice.T_OUT, 100, data.length, false, false);
            ring.kick();
            ring.await(10_000);
            ring.submit(2, RamBlkDevice.T_IN, 100, data.length, true, false);
            ring.kick();
            assertEquals(2, ring.await(10_000));
            TreeSet<Long> expected = new TreeSet<>();
            pages(expected, ring.statusGpa(0), 1);
            pages(expected, ring.statusGpa(2), 1);
            pages(expected, ring.dataGpa(2), data.length);
            QueueConfig c = ring.dq.config();
            if (packed) {
                pages(expected, c.descAddr(), 16L * c.size()); // used descriptors are written in the ring
            } else {
                pages(expected, c.deviceAddr(), 6 + 8L * c.size() + 2); // used ring, avail_event included
            }
            // The device may still be finishing its drain loop (re-enabling notifications writes avail_event
            // in the used ring) after the guest saw the completions: read the log once SET_FEATURES clearing
            // F_LOG_ALL is acknowledged, which the back-end handles only when every worker is between calls.
            rig.fe.setFeatures(acked);
            TreeSet<Long> marked = new TreeSet<>();
            view.readAndClear(marked::add);
            assertEquals(expected, marked, "dirty pages, seed=" + seed);
            // The device keeps running through the toggle, and stops logging when F_LOG_ALL goes.
            exchange(ring, ring, 4, false);
            assertEquals(0, view.readAndClear(p -> { }), "nothing is logged after F_LOG_ALL is cleared");
        }
    }

    private static void pages(TreeSet<Long> into, long gpa, long length) {
        for (long p = gpa / 4096; p <= (gpa + length - 1) / 4096; p++) {
            into.add(p);
        }
    }

    @Test
    void statusShouldBeStoredAndZeroShouldReset() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.negotiate(BASE_FEATURES, true, protocol(ProtocolFeature.STATUS, ProtocolFeature.REPLY_ACK));
            rig.fe.setStatus(0x0f);
            assertEquals(0x0f, rig.fe.getStatus());
            assertTrue(device.events.contains("status 15"), device.events.toString());
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, acked, 2, 4096);
            rig.program(ring, Rig.Setup.standard());
            exchange(ring, ring, 2, false);
            rig.fe.setStatus(0);
            assertEquals(0, rig.fe.getStatus());
            assertFalse(backend().ring(0).isStarted(), "status 0 resets the device and stops its rings");
            assertTrue(device.events.contains("reset"), device.events.toString());
        }
    }

    @Test
    void statusWithoutTheFeatureShouldBeRefused() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            rig.negotiate(BASE_FEATURES, true, protocol(ProtocolFeature.REPLY_ACK));
            assertThrows(FrontendException.class, () -> rig.fe.setStatus(1));
        }
    }

    @Test
    void resetDeviceShouldStopRingsAndLetThemStartAfresh() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.negotiate(BASE_FEATURES, true, protocol(ProtocolFeature.RESET_DEVICE, ProtocolFeature.REPLY_ACK));
            rig.setMemTable();
            Rig.Ring first = rig.ring(0, 16, acked, 2, 4096);
            rig.program(first, Rig.Setup.standard());
            exchange(first, first, 5, false);
            device.events.clear();
            rig.fe.resetDevice();
            assertFalse(backend().ring(0).isStarted());
            assertEquals(List.of("stopped 0", "reset"), device.events, "callbacks on RESET_DEVICE");
            Rig.Ring second = rig.ring(0, 16, acked, 2, 4096);
            rig.program(second, Rig.Setup.standard());
            exchange(second, second, 5, false);
        }
    }

    @Test
    void gpaAddressesShouldChangeWhatRingAddressesMean() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.negotiate(BASE_FEATURES, true, protocol(ProtocolFeature.GPA_ADDRESSES, ProtocolFeature.REPLY_ACK));
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, acked, 2, 4096);
            rig.program(ring, Rig.Setup.standard().withGpa());
            exchange(ring, ring, 6, false);
        }
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.negotiate(BASE_FEATURES, true, protocol(ProtocolFeature.REPLY_ACK));
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, acked, 2, 4096);
            // Without the feature the same values are front-end addresses, which map nothing here.
            assertThrows(FrontendException.class, () -> rig.program(ring, Rig.Setup.standard().withGpa()));
        }
    }

    @Test
    void deviceStateShouldSaveAndLoad() throws Exception {
        byte[] data = new byte[8192];
        random.nextBytes(data);
        byte[] state;
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.negotiate(BASE_FEATURES, true, protocol(ProtocolFeature.DEVICE_STATE, ProtocolFeature.REPLY_ACK));
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, acked, 1, 8192);
            rig.program(ring, Rig.Setup.standard());
            assertEquals(RamBlkDevice.S_OK, ring.write(0, 40, data));
            OwnedFd[] pipe = FdChannel.pipe();
            assertThrows(FrontendException.class, () -> rig.fe.setDeviceStateFd(true, pipe[1]), "refused while a ring runs");
            rig.fe.getVringBase(0);
            rig.fe.setDeviceStateFd(true, pipe[1]);
            pipe[1].close();
            state = readAll(FdChannel.of(pipe[0]));
            assertEquals(0, rig.fe.checkDeviceState(), "save succeeded");
        }
        served.close();
        device = RamBlkDevice.ram(1 << 20, QUEUES);
        served = Rig.serve(socket, device);
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.negotiate(BASE_FEATURES, true, protocol(ProtocolFeature.DEVICE_STATE, ProtocolFeature.REPLY_ACK));
            // A truncated state is refused at CHECK_DEVICE_STATE.
            load(rig, java.util.Arrays.copyOf(state, state.length / 2));
            assertNotEquals(0, rig.fe.checkDeviceState(), "a truncated state must fail");
            load(rig, state);
            assertEquals(0, rig.fe.checkDeviceState(), "load succeeded");
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, acked, 1, 8192);
            rig.program(ring, Rig.Setup.standard());
            byte[] back = new byte[data.length];
            assertEquals(RamBlkDevice.S_OK, ring.read(0, 40, back));
            assertArrayEquals(data, back, "state carried the store, seed=" + seed);
        }
    }

    private static void load(Rig rig, byte[] state) throws IOException {
        OwnedFd[] pipe = FdChannel.pipe();
        rig.fe.setDeviceStateFd(false, pipe[0]);
        pipe[0].close();
        try (FdChannel out = FdChannel.of(pipe[1])) {
            ByteBuffer b = ByteBuffer.wrap(state);
            while (b.hasRemaining()) {
                out.write(b);
            }
        }
    }

    private static byte[] readAll(FdChannel in) throws IOException {
        try (in) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteBuffer b = ByteBuffer.allocate(65536);
            while (in.read(b) >= 0) {
                out.write(b.array(), 0, b.position());
                b.clear();
            }
            return out.toByteArray();
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void inflightRequestsShouldBeResubmittedAfterAReconnect(boolean packed) throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long features = BASE_FEATURES | VirtioFeature.EVENT_IDX.mask() | (packed ? VirtioFeature.RING_PACKED.mask() : 0);
            long protocol = protocol(ProtocolFeature.INFLIGHT_SHMFD, ProtocolFeature.REPLY_ACK);
            long acked = rig.negotiate(features, true, protocol);
            try (VhostUserFrontend.Inflight inflight = rig.fe.getInflightFd(1, 16)) {
                rig.setMemTable();
                Rig.Ring ring = rig.ring(0, 16, acked, 4, 4096);
                rig.program(ring, Rig.Setup.standard());
                exchange(ring, ring, 4, false);
                device.hold = true;
                byte[][] data = new byte[3][4096];
                for (int s = 0; s < 3; s++) {
                    random.nextBytes(data[s]);
                    MemorySegment.copy(data[s], 0, ring.data(s), ValueLayout.JAVA_BYTE, 0, 4096);
                    ring.submit(s, RamBlkDevice.T_OUT, 200 + 8 * s, 4096, false, false);
                }
                ring.kick();
                waitFor(() -> heldCount() == 3, "three requests held in flight");
                assertEquals(-1, ring.poll(50));
                // The front-end goes away with the requests in flight, and comes back.
                rig.reconnect(socket);
                device.hold = false;
                rig.negotiate(features, true, protocol);
                rig.fe.setInflightFd(inflight);
                rig.setMemTable();
                int base;
                if (packed) {
                    // What the front-end knows (QEMU: last_avail = used position): 4 + 4 requests of 3
                    // descriptors each were completed, on a ring of 16.
                    int usedSlots = 3 * 8;
                    int slot = usedSlots % 16;
                    int wrap = (usedSlots / 16) % 2 == 0 ? 1 : 0;
                    base = slot | wrap << 15 | slot << 16 | wrap << 31;
                } else {
                    base = rig.memory.slice(ring.dq.config().deviceAddr() + 2, 2).get(LE_U16, 0) & 0xffff;
                }
                rig.program(ring, Rig.Setup.standard(), base);
                TreeSet<Integer> done = new TreeSet<>();
                for (int i = 0; i < 3; i++) {
                    int slot = ring.await(10_000);
                    assertEquals(RamBlkDevice.S_OK, ring.status(slot));
                    done.add(slot);
                }
                assertEquals(java.util.Set.of(0, 1, 2), done, "every request in flight completed once");
                assertEquals(-1, ring.poll(50), "nothing completed twice");
                for (int s = 0; s < 3; s++) {
                    assertArrayEquals(data[s], device.store().asSlice((200 + 8L * s) * 512, 4096).toArray(ValueLayout.JAVA_BYTE),
                            "request " + s + " on the store, seed=" + seed);
                }
                exchange(ring, ring, 8, false);
            }
        }
    }

    private int heldCount() {
        synchronized (device.held) {
            return device.held.size();
        }
    }

    @Test
    void aKickBeforeEnableShouldNotBeLost() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.negotiate(BASE_FEATURES, true, protocol(ProtocolFeature.REPLY_ACK));
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, acked, 1, 4096);
            rig.program(ring, Rig.Setup.standard().withoutEnable());
            byte[] data = new byte[512];
            random.nextBytes(data);
            MemorySegment.copy(data, 0, ring.data(0), ValueLayout.JAVA_BYTE, 0, data.length);
            ring.submit(0, RamBlkDevice.T_OUT, 7, data.length, false, false);
            ring.kick();
            assertEquals(-1, ring.poll(200), "a disabled ring is not served");
            assertEquals(0, device.served);
            rig.fe.setVringEnable(0, true);
            assertEquals(0, ring.await(10_000), "the kick that came before enable was kept");
            assertArrayEquals(data, device.store().asSlice(7 * 512, 512).toArray(ValueLayout.JAVA_BYTE));
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void getVringBaseShouldStopTheRingAndReportItsIndex(boolean packed) throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long features = BASE_FEATURES | (packed ? VirtioFeature.RING_PACKED.mask() : 0);
            long acked = rig.negotiate(features, true, protocol(ProtocolFeature.REPLY_ACK));
            rig.setMemTable();
            int size = 8;
            Rig.Ring ring = rig.ring(0, size, acked, 1, 4096);
            rig.program(ring, Rig.Setup.standard());
            int n = 13 + random.nextInt(20);
            byte[] block = new byte[512];
            for (int i = 0; i < n; i++) {
                assertEquals(RamBlkDevice.S_OK, ring.write(0, i, block), "seed=" + seed);
            }
            long base = rig.fe.getVringBase(0);
            long expected;
            if (packed) {
                // vhost-user.rst: bits 0-14 avail index, 15 avail wrap, 16-30 used index, 31 used wrap.
                // Each write is a chain of three descriptors (header, data, status), each taking a slot.
                long slots = 3L * n;
                long slot = slots % size;
                long wrap = (slots / size) % 2 == 0 ? 1 : 0;
                expected = slot | wrap << 15 | slot << 16 | wrap << 31;
            } else {
                expected = n;
            }
            assertEquals(expected, base, "vring base after " + n + " requests, seed=" + seed);
            assertFalse(backend().ring(0).isStarted());
            assertTrue(device.events.contains("stopped 0"), device.events.toString());
            // Stopped: a new request is not served ...
            ring.submit(0, RamBlkDevice.T_FLUSH, 0, 0, false, false);
            ring.dq.publish();
            ring.kick.signal();
            assertEquals(-1, ring.poll(200), "a stopped ring is not served");
            // ... until the ring starts again from the reported base.
            rig.program(ring, Rig.Setup.standard(), (int) base);
            assertEquals(0, ring.await(10_000));
            assertEquals(RamBlkDevice.S_OK, ring.status(0));
        }
    }

    /**
     * Control messages that change memory or rings while another thread keeps I/O running: the back-end
     * quiesces the ring's worker for each change, and the I/O stays correct.
     */
    @Test
    void memoryAndRingChangesUnderRunningIoShouldKeepItCorrect() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.negotiate(BASE_FEATURES | VirtioFeature.EVENT_IDX.mask(), true, protocol(
                    ProtocolFeature.CONFIGURE_MEM_SLOTS, ProtocolFeature.REPLY_ACK));
            rig.fe.addMemRegion(rig.regions.get(0));
            Rig.Ring ring = rig.ring(0, 32, acked, 4, 8192);
            rig.program(ring, Rig.Setup.standard());
            GuestRegion extra = rig.addRegion(1 << 20);
            java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
            java.util.concurrent.atomic.AtomicLong exchanged = new java.util.concurrent.atomic.AtomicLong();
            CompletableFutureTask io = new CompletableFutureTask(() -> {
                while (!stop.get()) {
                    exchange(ring, ring, 4, false);
                    exchanged.addAndGet(4);
                }
            });
            try {
                for (int i = 0; i < 40 && !io.isDone(); i++) {
                    rig.fe.addMemRegion(extra);
                    rig.fe.removeMemRegion(extra);
                    rig.fe.setVringEnable(0, false);
                    rig.fe.setVringEnable(0, true);
                    rig.fe.setVringCall(0, ring.call); // replaces the call fd with a copy of itself
                }
                long before = exchanged.get();
                waitFor(() -> exchanged.get() > before || io.isDone(), "I/O progress after the changes");
            } finally {
                stop.set(true);
                io.join();
            }
            assertEquals(0, ring.err.drain(), "no ring error, seed=" + seed);
            assertTrue(exchanged.get() > 0, "I/O ran, seed=" + seed);
        }
    }

    /** A task on its own thread whose failure {@link #join()} rethrows. */
    private static final class CompletableFutureTask {
        interface Body {
            void run() throws Exception;
        }

        private final Thread thread;
        private volatile Throwable failure;

        CompletableFutureTask(Body body) {
            thread = Thread.ofPlatform().daemon(true).name("test-io").start(() -> {
                try {
                    body.run();
                } catch (Throwable t) {
                    failure = t;
                }
            });
        }

        boolean isDone() {
            return !thread.isAlive();
        }

        void join() throws Exception {
            thread.join(30_000);
            assertFalse(thread.isAlive(), "the I/O thread ended");
            if (failure instanceof Exception e) {
                throw e;
            }
            if (failure instanceof Error e) {
                throw e;
            }
        }
    }

    @Test
    void stoppedRingsShouldWriteNothingAndSendNothingButTheBackEndKeepsAnswering() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.negotiate(BASE_FEATURES | VirtioFeature.EVENT_IDX.mask(), true, protocol(ProtocolFeature.MQ,
                    ProtocolFeature.REPLY_ACK, ProtocolFeature.INBAND_NOTIFICATIONS, ProtocolFeature.BACKEND_REQ,
                    ProtocolFeature.STATUS));
            AtomicInteger inband = new AtomicInteger();
            rig.fe.openBackendChannel(index -> inband.incrementAndGet());
            rig.setMemTable();
            Rig.Ring[] rings = new Rig.Ring[2];
            for (int q = 0; q < 2; q++) {
                rings[q] = rig.ring(q, 16, acked, 2, 4096);
                rig.program(rings[q], q == 0 ? Rig.Setup.standard() : Rig.Setup.standard().withoutCallFd());
                exchange(rings[q], rings[q], 2, false);
            }
            for (int q = 0; q < 2; q++) {
                rig.fe.getVringBase(q);
            }
            // A call sent just before the stop may still be on its way: let the count settle first.
            int callsBefore;
            do {
                callsBefore = inband.get();
                LockSupport.parkNanos(100_000_000L);
            } while (inband.get() != callsBefore);
            rings[0].call.drain();
            // Work offered on both rings after the stop, kicked every way there is.
            for (int q = 0; q < 2; q++) {
                rings[q].submit(0, RamBlkDevice.T_GET_ID, 0, 20, true, false);
                rings[q].dq.publish();
                rings[q].kick.signal();
                rig.fe.kickInband(q);
            }
            MemorySegment guest = rig.regions.get(0).segment();
            byte[] before = guest.toArray(ValueLayout.JAVA_BYTE);
            rig.fe.setVringEnable(0, false);
            rig.fe.setVringEnable(0, true);
            rig.fe.setStatus(0x0f);
            assertEquals(0x0f, rig.fe.getStatus(), "the back-end keeps answering");
            assertEquals(QUEUES, rig.fe.getQueueNum());
            LockSupport.parkNanos(200_000_000L);
            assertArrayEquals(before, guest.toArray(ValueLayout.JAVA_BYTE), "no guest memory written by stopped rings");
            assertEquals(0, rings[0].call.drain(), "no call from a stopped ring");
            assertEquals(callsBefore, inband.get(), "no in-band call from a stopped ring");
            assertEquals(-1, rings[0].poll(0));
            assertEquals(-1, rings[1].poll(0));
        }
    }

    @Test
    void aRingWithoutAKickFdShouldBePolled() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.negotiate(BASE_FEATURES, true, protocol(ProtocolFeature.REPLY_ACK));
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, acked, 4, 4096);
            rig.program(ring, Rig.Setup.standard().withoutKickFd());
            for (int i = 0; i < 10; i++) {
                ring.submit(0, RamBlkDevice.T_GET_ID, 0, 20, true, false);
                ring.dq.publish(); // never kicked
                assertEquals(0, ring.await(10_000));
                assertEquals(RamBlkDevice.S_OK, ring.status(0));
            }
            rig.fe.getVringBase(0); // stops the poller
        }
    }
}
