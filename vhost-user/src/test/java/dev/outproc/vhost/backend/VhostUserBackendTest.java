package dev.outproc.vhost.backend;

import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtio.VirtioQueue;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.vhost.message.VhostUserFeature;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The facade a device author meets: what it offers for a device, the checks on the device it is given,
 * its tuning, and that everything a front-end set up goes with that front-end.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class VhostUserBackendTest {
    private static final long MEMORY = 2L << 20;
    private static final long VERSION_1 = VirtioFeature.VERSION_1.mask();

    @TempDir
    Path dir;

    /** A device with only the required methods and some knobs. */
    private record Plain(int queues, int maxQueueSize, int configSize) implements VirtioDevice {
        @Override
        public long features() {
            return VERSION_1;
        }

        @Override
        public int queueCount() {
            return queues;
        }

        @Override
        public int maxQueueSize() {
            return maxQueueSize;
        }

        @Override
        public int configSize() {
            return configSize;
        }

        @Override
        public void processQueue(VirtioQueue queue) throws IOException {
            queue.drain(chain -> 0);
        }
    }

    @Test
    void aPlainDeviceShouldBeOfferedTheLibraryFeaturesButNotDeviceStateNorConfig() throws Exception {
        try (VhostUserBackend backend = new VhostUserBackend(new Plain(1, 256, 0), new VhostUserBackend.Options(1, false))) {
            long features = backend.offeredFeatures();
            assertEquals(VERSION_1 | VhostUserFeature.PROTOCOL_FEATURES.mask() | VhostUserFeature.LOG_ALL.mask(), features);
            long protocol = backend.offeredProtocolFeatures();
            assertEquals(VhostUserBackend.LIBRARY_PROTOCOL_FEATURES, protocol);
            assertTrue(ProtocolFeature.INFLIGHT_SHMFD.isSetIn(protocol), "inflight tracking is device-independent");
            assertFalse(ProtocolFeature.DEVICE_STATE.isSetIn(protocol), "a device that is not migratable has no state to move");
            assertFalse(ProtocolFeature.CONFIG.isSetIn(protocol), "no configuration space");
        }
    }

    @Test
    void aMigratableDeviceWithConfigShouldBeOfferedDeviceStateAndConfig() throws Exception {
        try (VhostUserBackend backend = new VhostUserBackend(RamBlkDevice.ram(1 << 20, 1), new VhostUserBackend.Options(1, false))) {
            long protocol = backend.offeredProtocolFeatures();
            assertTrue(ProtocolFeature.DEVICE_STATE.isSetIn(protocol));
            assertTrue(ProtocolFeature.CONFIG.isSetIn(protocol));
        }
    }

    /** Plain, with worker groups: {@code groupOf[i]} for queue i. */
    private record Grouped(Plain plain, int[] groupOf) implements VirtioDevice {
        @Override
        public long features() {
            return plain.features();
        }

        @Override
        public int queueCount() {
            return plain.queueCount();
        }

        @Override
        public int workerGroup(int queueIndex) {
            return groupOf[queueIndex];
        }

        @Override
        public void processQueue(VirtioQueue queue) throws IOException {
            plain.processQueue(queue);
        }
    }

    @Test
    void queuesOfOneWorkerGroupShouldShareAWorkerAndGroupsBeSpreadOverTheOthers() throws Exception {
        // Five queues in groups 0,0,1,1,0 with three workers: two workers used, pairs kept together.
        try (VhostUserBackend backend = new VhostUserBackend(new Grouped(new Plain(5, 256, 0), new int[] {0, 0, 1, 1, 0}),
                new VhostUserBackend.Options(3, false))) {
            assertEquals(2, backend.workers().length, "one worker per group, never more");
            assertSame(backend.ring(0).worker(), backend.ring(1).worker());
            assertSame(backend.ring(0).worker(), backend.ring(4).worker());
            assertSame(backend.ring(2).worker(), backend.ring(3).worker());
            assertNotSame(backend.ring(0).worker(), backend.ring(2).worker());
        }
        // One worker: every group on it.
        try (VhostUserBackend backend = new VhostUserBackend(new Grouped(new Plain(4, 256, 0), new int[] {0, 0, 1, 1}),
                new VhostUserBackend.Options(1, false))) {
            assertSame(backend.ring(0).worker(), backend.ring(3).worker());
        }
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                () -> new VhostUserBackend(new Grouped(new Plain(2, 256, 0), new int[] {0, 2}), new VhostUserBackend.Options(2, false)));
        assertTrue(bad.getMessage().contains("queue=1 workerGroup=2"), bad.getMessage());
    }

    @Test
    void devicesOutsideTheLimitsShouldBeRefusedWithTheirValues() {
        VhostUserBackend.Options one = new VhostUserBackend.Options(1, false);
        IllegalArgumentException queues = assertThrows(IllegalArgumentException.class,
                () -> new VhostUserBackend(new Plain(0, 256, 0), one));
        assertTrue(queues.getMessage().contains("queueCount=0"), queues.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new VhostUserBackend(new Plain(257, 256, 0), one));
        IllegalArgumentException size = assertThrows(IllegalArgumentException.class,
                () -> new VhostUserBackend(new Plain(1, 100, 0), one));
        assertTrue(size.getMessage().contains("maxQueueSize=100"), size.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new VhostUserBackend(new Plain(1, 65536, 0), one));
        IllegalArgumentException config = assertThrows(IllegalArgumentException.class,
                () -> new VhostUserBackend(new Plain(1, 256, 257), one));
        assertTrue(config.getMessage().contains("configSize=257"), config.getMessage());
    }

    @Test
    void optionsShouldRefuseNoWorkersAndDefaultToTheProcessorCount() {
        assertThrows(IllegalArgumentException.class, () -> new VhostUserBackend.Options(0, false));
        VhostUserBackend.Options defaults = VhostUserBackend.Options.defaults();
        assertEquals(Runtime.getRuntime().availableProcessors(), defaults.workerThreads());
        assertFalse(defaults.busyPoll());
    }

    @Test
    void defaultOptionsShouldStartOneWorkerPerQueueUpToTheProcessorCount() throws Exception {
        int processors = Runtime.getRuntime().availableProcessors();
        try (VhostUserBackend backend = new VhostUserBackend(new Plain(1, 256, 0), VhostUserBackend.Options.defaults())) {
            assertEquals(1, backend.workers().length, "one queue, one worker, whatever the processor count");
        }
        try (VhostUserBackend backend = new VhostUserBackend(new Plain(processors + 1, 256, 0), VhostUserBackend.Options.defaults())) {
            assertEquals(processors, backend.workers().length, "never more workers than processors");
        }
    }

    /** What one front-end set up (features, memory, ring positions, enable state) is gone for the next. */
    @Test
    void everythingAFrontEndSetUpShouldLeaveWithIt() throws Exception {
        Path socket = dir.resolve("facade.sock");
        try (Rig.Served served = Rig.serve(socket, RamBlkDevice.ram(1 << 20, 1))) {
            VhostUserBackend backend = served.server().backend();
            byte[] data = new byte[4096];
            new java.util.SplittableRandom(42).nextBytes(data);
            try (Rig rig = Rig.connect(socket, MEMORY)) {
                long acked = rig.negotiate(VERSION_1, true, ProtocolFeature.REPLY_ACK.mask());
                rig.setMemTable();
                Rig.Ring ring = rig.ring(0, 16, acked, 2, 4096);
                rig.program(ring, Rig.Setup.standard());
                assertEquals(RamBlkDevice.S_OK, ring.write(0, 0, data));
                assertEquals(acked, backend.negotiatedFeatures());
                assertEquals(1, backend.memory().regionCount());
                assertTrue(backend.ring(0).isStarted());
                assertTrue(backend.ring(0).isEnabled());
            }
            // The connection's end is seen by the server thread a little later than by this one.
            waitUntil(() -> backend.memory().regionCount() == 0 && !backend.ring(0).isStarted()
                    && backend.negotiatedFeatures() == 0);
            assertEquals(0, backend.negotiatedFeatures(), "no front-end, no features");
            assertEquals(0, backend.negotiatedProtocolFeatures());
            assertFalse(backend.ring(0).isEnabled());
            assertEquals(null, backend.ring(0).queue(), "no queue between front-ends");
            // The next front-end starts its ring at 0: it must not inherit the last one's position.
            try (Rig rig = Rig.connect(socket, MEMORY)) {
                long acked = rig.negotiate(VERSION_1, true, ProtocolFeature.REPLY_ACK.mask());
                rig.setMemTable();
                Rig.Ring ring = rig.ring(0, 16, acked, 2, 4096);
                rig.program(ring, Rig.Setup.standard());
                byte[] back = new byte[data.length];
                assertEquals(RamBlkDevice.S_OK, ring.read(0, 0, back));
                assertArrayEquals(data, back, "the device's store outlives the connection");
                assertEquals(1, rig.fe.getVringBase(0), "one request on the new ring, counted from 0");
            }
        }
    }

    @Test
    void notifyConfigChangedWithoutAFrontEndShouldFailClearly() throws Exception {
        try (VhostUserBackend backend = new VhostUserBackend(RamBlkDevice.ram(1 << 20, 1), new VhostUserBackend.Options(1, false))) {
            IOException e = assertThrows(IOException.class, backend::notifyConfigChanged);
            assertTrue(e.getMessage().contains("front-end"), e.getMessage());
        }
    }

    /** Negotiation at DEBUG (JUL FINE), every message at TRACE (JUL FINER); nothing of it at the default level. */
    @Test
    void negotiationShouldBeLoggedAtDebugAndEveryMessageAtTrace() throws Exception {
        java.util.logging.Logger jul = java.util.logging.Logger.getLogger(VhostUserBackend.class.getName());
        java.util.List<java.util.logging.LogRecord> records = new java.util.concurrent.CopyOnWriteArrayList<>();
        java.util.logging.Handler capture = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord record) {
                if (isLoggable(record)) {
                    records.add(record);
                }
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        capture.setLevel(java.util.logging.Level.ALL);
        java.util.logging.Level before = jul.getLevel();
        jul.addHandler(capture);
        Path socket = dir.resolve("logging.sock");
        try (Rig.Served served = Rig.serve(socket, RamBlkDevice.ram(1 << 20, 1))) {
            session(socket); // at the default level
            assertTrue(records.stream().noneMatch(r -> r.getLevel().intValue() < java.util.logging.Level.INFO.intValue()),
                    () -> "quiet by default: " + messages(records));
            jul.setLevel(java.util.logging.Level.FINEST);
            session(socket);
        } finally {
            jul.setLevel(before);
            jul.removeHandler(capture);
        }
        String fine = messages(records.stream().filter(r -> r.getLevel() == java.util.logging.Level.FINE).toList());
        for (String expected : new String[] {"features acknowledged: 0x", "protocol features acknowledged: REPLY_ACK",
                "memory table: 1 region(s)", "ring 0 started: split ring of 16", "ring 0 enabled",
                "ring 0 stopped at base 0x1"}) {
            assertTrue(fine.contains(expected), () -> "DEBUG has '" + expected + "': " + fine);
        }
        String finer = messages(records.stream().filter(r -> r.getLevel() == java.util.logging.Level.FINER).toList());
        assertTrue(finer.contains("SET_MEM_TABLE (40 bytes, 1 fds, NEED_REPLY)"), () -> "TRACE has every message: " + finer);
    }

    private static void session(Path socket) throws IOException {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.negotiate(VERSION_1, true, ProtocolFeature.REPLY_ACK.mask());
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, acked, 2, 4096);
            rig.program(ring, Rig.Setup.standard());
            assertEquals(RamBlkDevice.S_OK, ring.write(0, 0, new byte[512]));
            rig.fe.getVringBase(0);
        }
    }

    private static String messages(java.util.List<java.util.logging.LogRecord> records) {
        java.util.logging.SimpleFormatter format = new java.util.logging.SimpleFormatter();
        StringBuilder all = new StringBuilder();
        for (java.util.logging.LogRecord r : records) {
            all.append(format.formatMessage(r)).append('\n');
        }
        return all.toString();
    }

    private static void waitUntil(java.util.function.BooleanSupplier condition) {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("condition not met within 10 s");
            }
            java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
        }
    }
}
