package dev.outproc.vhost.backend;

import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtio.VirtioQueue;
import dev.outproc.vhost.message.ProtocolFeature;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import dev.outproc.core.fd.FdChannel;
import dev.outproc.core.fd.OwnedFd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Finding: the connection thread waited on a worker without a deadline, so anything that held the worker
 * (a peer-controlled fd, a device blocking in processQueue) wedged the ring messages, the disconnect and the
 * shutdown. Now the wait ends after the stall timeout with that connection closed, and once the worker is
 * free the next front-end is served with the fds back where they were.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class StalledWorkerTest {
    @TempDir
    Path dir;

    /** A block device that, when armed, blocks in processQueue until released. */
    static final class BlockingDevice implements VhostUserDevice {
        final RamBlkDevice inner = RamBlkDevice.ram(1 << 20, 1);
        volatile CountDownLatch gate;
        final CountDownLatch entered = new CountDownLatch(1);
        final AtomicInteger calls = new AtomicInteger();

        @Override
        public long features() {
            return inner.features();
        }

        @Override
        public int queueCount() {
            return inner.queueCount();
        }

        @Override
        public void featuresNegotiated(long negotiated) {
            inner.featuresNegotiated(negotiated);
        }

        @Override
        public void processQueue(VirtioQueue vring) throws IOException {
            calls.incrementAndGet();
            CountDownLatch g = gate;
            if (g != null) {
                entered.countDown();
                try {
                    g.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            inner.processQueue(vring);
        }
    }

    @Test
    void aWorkerThatDoesNotAnswerShouldEndOnlyThatConnection() throws Exception {
        Path socket = dir.resolve("stall.sock");
        BlockingDevice device = new BlockingDevice();
        VhostUserServer server = VhostUserServer.listen(device,
                new VhostUserBackend.Options(1, false).withStallTimeout(Duration.ofMillis(500)), socket);
        Thread thread = Thread.ofPlatform().daemon(true).start(server::run);
        try (Rig.Served served = new Rig.Served(server, thread)) {
            session(socket); // warm-up
            awaitIdle(server);
            int before = TestFds.stable();
            CountDownLatch gate = new CountDownLatch(1);
            try (Rig rig = Rig.connect(socket, 4 << 20)) {
                rig.fe.negotiate(VirtioFeature.VERSION_1.mask(), ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK));
                rig.setMemTable();
                Rig.Ring ring = rig.ring(0, 16, rig.fe.features(), 2, 4096);
                rig.program(ring, Rig.Setup.standard());
                device.gate = gate;
                ring.submit(0, RamBlkDevice.T_OUT, 0, 512, false, false);
                ring.kick();
                assertTrue(device.entered.await(10, TimeUnit.SECONDS), "the device is blocked in processQueue");
                long start = System.nanoTime();
                IOException closed = assertThrows(IOException.class, () -> rig.fe.getVringBase(0),
                        "GET_VRING_BASE cannot be answered while the worker is held");
                long waitedMs = (System.nanoTime() - start) / 1_000_000;
                assertTrue(waitedMs < 9_000, "the connection ended after the stall timeout, not the reply timeout: "
                        + waitedMs + " ms, " + closed);
            }
            device.gate = null;
            gate.countDown();
            session(socket);
            awaitIdle(server);
            assertEquals(before, TestFds.settle(before), "fds after the stalled connection and a clean one");
        }
    }

    /**
     * Finding: every in-band VRING_KICK (and every tick of the no-fd poller) queued a task of its own on the
     * worker, in an unbounded queue: a front-end kicking while the worker was busy grew it without limit and
     * made the device run once per kick afterwards. Kicks now coalesce into one queued run per ring.
     */
    @Test
    void inBandKicksWhileTheWorkerIsBusyShouldQueueOneRun() throws Exception {
        Path socket = dir.resolve("kicks.sock");
        BlockingDevice device = new BlockingDevice();
        VhostUserServer server = VhostUserServer.listen(device, new VhostUserBackend.Options(1, false), socket);
        Thread thread = Thread.ofPlatform().daemon(true).start(server::run);
        try (Rig.Served served = new Rig.Served(server, thread); Rig rig = Rig.connect(socket, 4 << 20)) {
            rig.fe.negotiate(VirtioFeature.VERSION_1.mask(), ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK,
                    ProtocolFeature.INBAND_NOTIFICATIONS, ProtocolFeature.BACKEND_REQ));
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, rig.fe.features(), 2, 4096);
            rig.program(ring, Rig.Setup.standard());
            CountDownLatch gate = new CountDownLatch(1);
            device.gate = gate;
            ring.submit(0, RamBlkDevice.T_OUT, 0, 512, false, false);
            ring.kick();
            assertTrue(device.entered.await(10, TimeUnit.SECONDS), "the device is busy");
            int kicks = 5_000;
            for (int i = 0; i < kicks; i++) {
                rig.fe.kickInband(0);
            }
            rig.fe.getFeatures(); // answered after every kick before it was handled
            int before = device.calls.get();
            device.gate = null;
            gate.countDown();
            Thread.sleep(500);
            int runs = device.calls.get() - before;
            assertTrue(runs <= 2, kicks + " kicks while busy made " + runs + " device runs afterwards");
            assertEquals(0, ring.status(ring.await(5_000)), "the request completed");
        }
    }

    private static long deviceStateThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().equals("vhost-user-device-state") && t.isAlive()).count();
    }

    /**
     * Finding: a device-state transfer that had not ended when CHECK_DEVICE_STATE gave up kept its thread and
     * its fd, and stayed "running", so the front-end could not try again. The check now aborts it: the thread
     * ends, the back-end's end of the pipe closes (our writes get EPIPE), and a new transfer starts.
     */
    @Test
    void aDeviceStateTransferThatOutlivesTheCheckShouldBeAborted() throws Exception {
        Path socket = dir.resolve("state.sock");
        VhostUserServer server = VhostUserServer.listen(RamBlkDevice.ram(1 << 20, 1),
                new VhostUserBackend.Options(1, false).withStallTimeout(Duration.ofMillis(300)), socket);
        Thread thread = Thread.ofPlatform().daemon(true).start(server::run);
        try (Rig.Served served = new Rig.Served(server, thread)) {
            session(socket);
            awaitIdle(server);
            int before = TestFds.stable();
            long threadsBefore = deviceStateThreads();
            OwnedFd[] pipe = FdChannel.pipe();
            try (Rig rig = Rig.connect(socket, 4 << 20); OwnedFd writeEnd = pipe[1]) {
                rig.fe.negotiate(VirtioFeature.VERSION_1.mask(), ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK,
                        ProtocolFeature.DEVICE_STATE));
                try (OwnedFd readEnd = pipe[0]) {
                    rig.fe.setDeviceStateFd(false, readEnd); // a load whose bytes never come
                }
                assertEquals(threadsBefore + 1, deviceStateThreads(), "the transfer runs");
                assertTrue(rig.fe.checkDeviceState() != 0, "the check reports the unfinished transfer as failed");
                assertEquals(threadsBefore, deviceStateThreads(), "the transfer thread ended with the check");
                try (FdChannel writer = FdChannel.of(writeEnd.duplicate())) {
                    IOException broken = assertThrows(IOException.class, () -> {
                        for (int i = 0; i < 1000; i++) {
                            writer.write(ByteBuffer.allocate(4096));
                        }
                    });
                    assertTrue(broken.getMessage().contains("EPIPE"), broken.getMessage());
                }
                // A new transfer is not refused as "already running": a save that completes.
                OwnedFd[] second = FdChannel.pipe();
                try (OwnedFd saveRead = second[0]) {
                    try (OwnedFd saveWrite = second[1]) {
                        rig.fe.setDeviceStateFd(true, saveWrite);
                    }
                    try (FdChannel reader = FdChannel.of(saveRead.duplicate())) {
                        ByteBuffer sink = ByteBuffer.allocate(1 << 16);
                        while (reader.read(sink.clear()) >= 0) {
                            // drain the saved state
                        }
                    }
                    assertEquals(0, rig.fe.checkDeviceState(), "the second transfer succeeded");
                }
            }
            session(socket);
            awaitIdle(server);
            assertEquals(before, TestFds.settle(before), "fds after the aborted transfer");
        }
    }

    private static void session(Path socket) throws IOException {
        try (Rig rig = Rig.connect(socket, 4 << 20)) {
            rig.fe.negotiate(VirtioFeature.VERSION_1.mask(), ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK));
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, rig.fe.features(), 2, 4096);
            rig.program(ring, Rig.Setup.standard());
            assertEquals(RamBlkDevice.S_OK, ring.write(0, 3, new byte[512]));
        }
    }

    private static void awaitIdle(VhostUserServer server) {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (server.backend().isServing() && System.nanoTime() - deadline < 0) {
            LockSupport.parkNanos(1_000_000);
        }
    }
}
