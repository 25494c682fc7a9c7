package dev.outproc.vhost.backend;

import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.vhost.message.ProtocolFeature;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A device that fails (issue 12, item 1: "treat any Throwable as fatal to that connection only, and restart a
 * dead worker"). An {@code Error} from the device's queue handler or from a callback on the ring's worker ends
 * that front-end's connection with a log line; a {@code RuntimeException} from the queue handler breaks that
 * ring (the front-end hears of it on the ring's error eventfd) and the connection goes on. Either way the server
 * then serves the next front-end with real I/O, and the process holds the fds and threads it held before. A worker
 * whose event loop ended is replaced when the next front-end connects.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class DeviceFailureTest {
    private static final long MEMORY = 4L << 20;

    @TempDir
    Path dir;

    private Path socket;
    private RamBlkDevice device;
    private Rig.Served served;
    private ProcessResources before;
    private final List<LogRecord> log = new CopyOnWriteArrayList<>();
    private final Logger jul = Logger.getLogger(VhostUserBackend.class.getName());
    private final Handler capture = new Handler() {
        @Override
        public void publish(LogRecord record) {
            log.add(record);
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
        }
    };

    @BeforeEach
    void start() throws Exception {
        socket = dir.resolve("failing.sock");
        device = RamBlkDevice.ram(1 << 20, 1);
        served = Rig.serve(socket, device);
        session(new SplittableRandom(1)); // warm-up: lazily created resources are in the baseline
        awaitIdle();
        before = ProcessResources.settle(ProcessResources.now());
        capture.setLevel(Level.ALL);
        jul.addHandler(capture);
    }

    @AfterEach
    void stop() throws Exception {
        jul.removeHandler(capture);
        served.close();
    }

    /** A front-end that writes blocks and reads them back. */
    private void session(SplittableRandom random) throws Exception {
        try (Rig rig = connect()) {
            Rig.Ring ring = rig.ring(0, 16, rig.fe.features(), 4, 16 * 1024);
            rig.program(ring, Rig.Setup.standard());
            for (int round = 0; round < 4; round++) {
                byte[] data = new byte[512 * (1 + random.nextInt(8))];
                random.nextBytes(data);
                long sector = random.nextInt(1024);
                assertEquals(RamBlkDevice.S_OK, ring.write(0, sector, data));
                byte[] back = new byte[data.length];
                assertEquals(RamBlkDevice.S_OK, ring.read(1, sector, back));
                assertArrayEquals(data, back);
            }
        }
    }

    private Rig connect() throws Exception {
        Rig rig = Rig.connect(socket, MEMORY);
        rig.fe.negotiate(VirtioFeature.maskOf(VirtioFeature.VERSION_1, VirtioFeature.EVENT_IDX),
                ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK));
        rig.setMemTable();
        return rig;
    }

    private void awaitIdle() throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (served.server().backend().isServing() && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        assertTrue(!served.server().backend().isServing(), "the connection was released");
    }

    /** The back-end closed the connection: every request now fails. */
    private static void awaitClosedByBackend(Rig rig) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < deadline) {
            try {
                rig.fe.getFeatures();
            } catch (IOException closed) {
                return;
            }
            Thread.sleep(10);
        }
        fail("the connection is still answered");
    }

    private boolean logged(Level level, String... words) {
        return log.stream().anyMatch(r -> r.getLevel().intValue() >= level.intValue()
                && List.of(words).stream().allMatch(w -> String.valueOf(r.getMessage()).contains(w)));
    }

    /** What the next front-end finds: I/O works, and the process holds what it held before the failure. */
    private void theNextFrontEndShouldBeServed() throws Exception {
        awaitIdle();
        session(new SplittableRandom(2));
        awaitIdle();
        ProcessResources after = ProcessResources.settle(before);
        assertTrue(after.fds() <= before.fds(), "open fds: before " + before + ", after " + after);
        assertTrue(after.threads() <= before.threads(), "threads: before " + before + ", after " + after + ": "
                + Thread.getAllStackTraces().keySet().stream().map(Thread::getName).sorted().toList());
        assertTrue(after.memfdMappings() <= before.memfdMappings(), "memfd mappings: before " + before + ", after " + after);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"AssertionError", "StackOverflowError", "OutOfMemoryError", "InternalError"})
    void anErrorFromTheQueueHandlerShouldEndThatConnectionOnly(String error) throws Exception {
        Throwable t = switch (error) {
            case "AssertionError" -> new AssertionError("device invariant broken");
            case "StackOverflowError" -> new StackOverflowError(); // provoked by real recursion in the device
            case "OutOfMemoryError" -> new OutOfMemoryError("device buffer");
            default -> new InternalError("a fault in unsafe access");
        };
        try (Rig rig = connect()) {
            Rig.Ring ring = rig.ring(0, 16, rig.fe.features(), 4, 16 * 1024);
            rig.program(ring, Rig.Setup.standard());
            assertEquals(RamBlkDevice.S_OK, ring.write(0, 0, new byte[512]), "served before the failure");
            device.failOnce.put("process", t);
            ring.submit(0, RamBlkDevice.T_OUT, 1, 512, false, false);
            // The armed failure needs a new processQueue call; the run that served the write above may still be
            // looking at the ring, take this chain and leave the driver no kick owed.
            ring.kickUnconditionally();
            awaitClosedByBackend(rig);
        }
        assertTrue(device.failOnce.isEmpty(), "the device threw");
        assertTrue(logged(Level.SEVERE, "ring 0", "the device failed with java.lang." + error, "closing the connection"),
                "an error log line names the ring and the error: " + log.stream().map(LogRecord::getMessage).toList());
        theNextFrontEndShouldBeServed();
    }

    @Test
    void aRuntimeExceptionFromTheQueueHandlerShouldBreakThatRingOnly() throws Exception {
        try (Rig rig = connect()) {
            Rig.Ring ring = rig.ring(0, 16, rig.fe.features(), 4, 16 * 1024);
            rig.program(ring, Rig.Setup.standard());
            device.failOnce.put("process", new IllegalStateException("device state corrupt"));
            ring.submit(0, RamBlkDevice.T_OUT, 1, 512, false, false);
            ring.kick();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (ring.err.drain() == 0) {
                assertTrue(System.nanoTime() < deadline, "the front-end hears of the broken ring on its error eventfd");
                Thread.sleep(1);
            }
            assertTrue(served.server().backend().ring(0).isBroken());
            assertTrue(logged(Level.WARNING, "ring 0 is broken", "device state corrupt"),
                    log.stream().map(LogRecord::getMessage).toList().toString());
            // The connection itself goes on: a control request is still answered.
            assertEquals(rig.fe.features(), rig.fe.getFeatures() & rig.fe.features());
        }
        theNextFrontEndShouldBeServed();
    }

    @Test
    void anErrorFromACallbackOnTheWorkerShouldEndThatConnectionOnly() throws Exception {
        device.failOnce.put("started", new AssertionError("queueStarted invariant"));
        try (Rig rig = connect()) {
            Rig.Ring ring = rig.ring(0, 16, rig.fe.features(), 4, 16 * 1024);
            assertThrows(IOException.class, () -> rig.program(ring, Rig.Setup.standard()),
                    "the ring start (SET_VRING_KICK) fails with the device");
            awaitClosedByBackend(rig);
        }
        assertTrue(device.failOnce.isEmpty(), "the device threw");
        assertTrue(logged(Level.WARNING, "queueStarted invariant"), log.stream().map(LogRecord::getMessage).toList().toString());
        theNextFrontEndShouldBeServed();
    }

    /**
     * A worker whose event loop ended (here it is stopped; in production a failure of epoll itself, or a
     * throwable that escaped every handler) would leave every later front-end's rings unserved: the next
     * connection gets a new worker, with a log line.
     */
    @Test
    void aWorkerWhoseLoopEndedShouldBeReplacedForTheNextFrontEnd() throws Exception {
        VhostUserBackend backend = served.server().backend();
        var old = backend.workers()[0];
        old.close();
        assertTrue(!old.isRunning());
        session(new SplittableRandom(3));
        assertTrue(backend.workers()[0] != old && backend.workers()[0].isRunning(), "a new worker");
        assertTrue(backend.ring(0).worker() == backend.workers()[0], "the ring moved to it");
        assertTrue(logged(Level.SEVERE, "worker 0 had stopped"), log.stream().map(LogRecord::getMessage).toList().toString());
        theNextFrontEndShouldBeServed();
    }
}
