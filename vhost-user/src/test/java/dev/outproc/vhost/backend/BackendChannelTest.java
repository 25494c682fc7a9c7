package dev.outproc.vhost.backend;

import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.vhost.frontend.FrontendException;
import dev.outproc.vhost.frontend.VhostUserFrontend;
import dev.outproc.vhost.message.ProtocolFeature;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The back-end channel handler (SET_BACKEND_REQ_FD) through the real dispatcher: what needs it, what it
 * carries, and a front-end that replaces it. (In-band kicks and calls under I/O are in
 * {@link ProtocolFeatureMatrixTest}, IOTLB misses in {@link IotlbBackendTest}.)
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class BackendChannelTest {
    private static final long MEMORY = 2L << 20;
    private static final long VERSION_1 = VirtioFeature.VERSION_1.mask();

    @TempDir
    Path dir;

    private Path socket;
    private Rig.Served served;

    @BeforeEach
    void start() throws IOException {
        socket = dir.resolve("channel.sock");
        served = Rig.serve(socket, RamBlkDevice.ram(1 << 20, 1));
    }

    @AfterEach
    void stop() throws InterruptedException {
        served.close();
    }

    private VhostUserBackend backend() {
        return served.server().backend();
    }

    private static void waitFor(BooleanSupplier condition, String what) {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("timed out waiting for " + what);
            }
            LockSupport.parkNanos(1_000_000);
        }
    }

    @Test
    void theChannelShouldNeedBackendReq() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            rig.negotiate(VERSION_1, true, ProtocolFeature.REPLY_ACK.mask());
            FrontendException refused = assertThrows(FrontendException.class,
                    () -> rig.fe.openBackendChannel(new VhostUserFrontend.BackendRequestHandler() { }));
            assertEquals(BackendException.UNSUPPORTED, refused.status());
            assertEquals(1, rig.fe.getQueueNum(), "still serving");
        }
    }

    @Test
    void configChangesShouldNeedTheChannelAndFollowTheNewestOne() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            rig.negotiate(VERSION_1, true, ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.BACKEND_REQ,
                    ProtocolFeature.CONFIG));
            IOException none = assertThrows(IOException.class, backend()::notifyConfigChanged);
            assertTrue(none.getMessage().contains("SET_BACKEND_REQ_FD"), none.getMessage());
            AtomicInteger first = new AtomicInteger();
            rig.fe.openBackendChannel(new VhostUserFrontend.BackendRequestHandler() {
                @Override
                public void configChanged() {
                    first.incrementAndGet();
                }
            });
            backend().notifyConfigChanged();
            waitFor(() -> first.get() == 1, "CONFIG_CHANGE_MSG on the first channel");
            AtomicInteger second = new AtomicInteger();
            rig.fe.openBackendChannel(new VhostUserFrontend.BackendRequestHandler() {
                @Override
                public void configChanged() {
                    second.incrementAndGet();
                }
            });
            backend().notifyConfigChanged();
            waitFor(() -> second.get() == 1, "CONFIG_CHANGE_MSG on the replacing channel");
            assertEquals(1, first.get(), "nothing more on the replaced channel");
        }
    }

    /** A ring told to call in-band, with no channel to call on: the ring breaks and says so on its error fd. */
    @Test
    void inbandCallsWithoutTheChannelShouldBreakTheRingVisibly() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.negotiate(VERSION_1, true, ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK,
                    ProtocolFeature.INBAND_NOTIFICATIONS));
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, acked, 2, 4096);
            rig.program(ring, Rig.Setup.standard().withoutCallFd());
            ring.submit(0, RamBlkDevice.T_OUT, 0, 512, false, false);
            ring.kick();
            waitFor(() -> {
                try {
                    return ring.err.drain() > 0;
                } catch (IOException e) {
                    throw new IllegalStateException(e);
                }
            }, "the ring's error fd");
            assertTrue(backend().ring(0).isBroken(), backend().ring(0).toString());
            assertEquals(1, rig.fe.getQueueNum(), "the back-end still answers");
        }
    }

    @Test
    void inbandCallsShouldArriveOnTheChannel() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.negotiate(VERSION_1, true, ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK,
                    ProtocolFeature.INBAND_NOTIFICATIONS, ProtocolFeature.BACKEND_REQ));
            AtomicInteger calls = new AtomicInteger();
            rig.fe.openBackendChannel(index -> {
                if (index == 0) {
                    calls.incrementAndGet();
                }
            });
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, acked, 2, 4096);
            rig.program(ring, Rig.Setup.standard().withoutCallFd());
            assertEquals(RamBlkDevice.S_OK, ring.write(0, 0, new byte[512]));
            waitFor(() -> calls.get() >= 1, "VRING_CALL for ring 0");
        }
    }
}
