package dev.outproc.vhost.backend;

import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtio.VirtioQueue;
import dev.outproc.vhost.message.ProtocolFeature;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
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
