package dev.outproc.vhost.backend;

import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.MemFd;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtqueue.QueueObserver;
import dev.outproc.vhost.frontend.VhostUserFrontend;
import dev.outproc.vhost.message.ProtocolFeature;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The inflight log (INFLIGHT_SHMFD): its layout, the trackers that keep it, the recovery that settles it
 * after a crash, and GET_INFLIGHT_FD through the real dispatcher. (Whole crash-and-resubmit runs are in
 * {@link BackendCrashRecoveryTest} and {@link ProtocolFeatureMatrixTest}.)
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class InflightRegionTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void aNewLogShouldBeValidForEveryQueueAndAlignedTo64Bytes(boolean packed) throws Exception {
        try (InflightRegion log = InflightRegion.create(3, 100, packed)) {
            long perQueue = InflightRegion.queueRegionBytes(100, packed);
            assertEquals(0, perQueue % 64, "queue regions are 64-byte aligned");
            assertTrue(perQueue >= (packed ? 32 + 32 * 100 : 16 + 16 * 100), "room for the header and 100 entries");
            assertEquals(3 * perQueue, log.sizeBytes());
            for (int q = 0; q < 3; q++) {
                assertTrue(log.isValid(q), "queue " + q);
            }
            if (packed) {
                assertEquals(0, log.inFlightPacked(0).length);
            } else {
                assertEquals(0, log.recoverSplit(0, 0).resubmit().length);
            }
        }
    }

    @Test
    void splitRecoveryShouldResubmitWhatIsInFlightOldestFirst() throws Exception {
        try (InflightRegion log = InflightRegion.create(1, 16, false)) {
            QueueObserver tracker = log.tracker(0, 0);
            tracker.chainPopped(5);
            tracker.chainPopped(2);
            tracker.chainPopped(9);
            tracker.chainCompleted(2, 0);
            tracker.usedIndexPublished(1, false);
            InflightRegion.Recovery recovery = log.recoverSplit(0, 1);
            assertArrayEquals(new int[] {5, 9}, recovery.resubmit(), "in pop order");
            assertEquals(1, recovery.nextUsed());
            assertEquals(3, recovery.nextAvail(), "used + in flight");
            assertEquals(3, recovery.lastCounter(), "three pops counted");
        }
    }

    /** A crash after the used entry reached the ring but before the log heard of it: the batch is settled by the ring. */
    @Test
    void splitRecoveryShouldCommitTheLastBatchWhenTheRingSaysItWasPublished() throws Exception {
        try (InflightRegion log = InflightRegion.create(1, 16, false)) {
            QueueObserver tracker = log.tracker(0, 0);
            tracker.chainPopped(0);
            tracker.chainPopped(1);
            tracker.chainCompleted(0, 0); // no usedIndexPublished: the process died here
            InflightRegion.Recovery recovery = log.recoverSplit(0, 1);
            assertArrayEquals(new int[] {1}, recovery.resubmit(), "head 0 was published, only 1 is in flight");
            assertEquals(1, recovery.nextUsed());
            assertEquals(2, recovery.nextAvail());
        }
    }

    @Test
    void splitRecoveryShouldKeepTheLastBatchWhenTheRingNeverSawIt() throws Exception {
        try (InflightRegion log = InflightRegion.create(1, 16, false)) {
            QueueObserver tracker = log.tracker(0, 0);
            tracker.chainPopped(0);
            tracker.chainPopped(1);
            tracker.chainCompleted(0, 0);
            InflightRegion.Recovery recovery = log.recoverSplit(0, 0);
            assertArrayEquals(new int[] {0, 1}, recovery.resubmit(), "nothing reached the ring: both are resubmitted");
            assertEquals(0, recovery.nextUsed());
        }
    }

    @Test
    void packedTrackingShouldListBufferIdsInPopOrder() throws Exception {
        try (InflightRegion log = InflightRegion.create(1, 8, true)) {
            QueueObserver tracker = log.tracker(0, 0);
            tracker.chainPopped(3);
            tracker.chainPopped(1);
            tracker.chainPopped(6);
            tracker.chainCompleted(1, 0);
            tracker.usedIndexPublished(2, true);
            assertArrayEquals(new int[] {3, 6}, log.inFlightPacked(0));
        }
    }

    /** SET_INFLIGHT_FD maps the same memory a crashed back-end wrote through GET_INFLIGHT_FD. */
    @Test
    void aMappedLogShouldSeeWhatTheCreatorWrote() throws Exception {
        try (InflightRegion created = InflightRegion.create(2, 32, false)) {
            QueueObserver tracker = created.tracker(1, 0);
            tracker.chainPopped(7);
            try (OwnedFd copy = created.fd().duplicate();
                 InflightRegion mapped = InflightRegion.map(copy, created.sizeBytes(), 0, 2, 32, false)) {
                assertTrue(mapped.isValid(1));
                assertArrayEquals(new int[] {7}, mapped.recoverSplit(1, 0).resubmit());
            }
        }
    }

    @Test
    void aLogTooSmallForItsQueuesShouldBeRefused() throws Exception {
        try (OwnedFd fd = MemFd.create("small-inflight", 4096)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> InflightRegion.map(fd, 4096, 0, 4, 256, false));
            assertTrue(e.getMessage().contains("too small"), e.getMessage());
        }
    }

    @Test
    void aGarbageQueueRegionShouldBeInvalidUntilPrepared() throws Exception {
        try (OwnedFd fd = MemFd.create("garbage-inflight", 8192)) {
            dev.outproc.core.memory.SharedMapping garbage = dev.outproc.core.memory.SharedMapping.map(fd.get(), 0, 8192, true);
            garbage.segment().fill((byte) 0x5a);
            garbage.close();
            try (InflightRegion log = InflightRegion.map(fd, 8192, 0, 1, 16, false)) {
                assertFalse(log.isValid(0));
                log.prepare(0, VirtioFeature.VERSION_1.mask());
                assertTrue(log.isValid(0));
                assertEquals(0, log.recoverSplit(0, 0).resubmit().length, "a prepared region holds nothing in flight");
            }
        }
    }

    @Test
    void getInflightFdShouldReturnALogOfTheAskedShapeAndRefuseOthers() throws Exception {
        Path socket = dir.resolve("inflight.sock");
        try (Rig.Served served = Rig.serve(socket, RamBlkDevice.ram(1 << 20, 2));
             VhostUserFrontend fe = VhostUserFrontend.connect(socket)) {
            fe.setReplyTimeoutMillis(10_000);
            fe.negotiate(VirtioFeature.VERSION_1.mask(),
                    ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.INFLIGHT_SHMFD));
            try (VhostUserFrontend.Inflight inflight = fe.getInflightFd(2, 64)) {
                assertEquals(2, inflight.numQueues());
                assertEquals(64, inflight.queueSize());
                assertEquals(2 * InflightRegion.queueRegionBytes(64, false), inflight.mmapSize());
                assertEquals(inflight.mmapSize(), MemFd.size(inflight.fd().get()), "the fd holds the log");
                fe.setInflightFd(inflight); // handed back, as after a reconnect
            }
            assertEquals(2, fe.getQueueNum(), "the back-end still answers");
        }
    }

    /** GET_INFLIGHT_FD has no status to carry a refusal: the connection closes, and the next one is served. */
    @ParameterizedTest(name = "num_queues={0}")
    @ValueSource(ints = {0, 3, -4096})
    void getInflightFdOfAShapeTheDeviceCannotHaveShouldEndTheConnection(int shape) throws Exception {
        int numQueues = shape < 0 ? 1 : shape;
        int queueSize = shape < 0 ? -shape : 64; // 4096: above the device's maxQueueSize of 1024
        Path socket = dir.resolve("inflight.sock");
        try (Rig.Served served = Rig.serve(socket, RamBlkDevice.ram(1 << 20, 2))) {
            try (VhostUserFrontend fe = VhostUserFrontend.connect(socket)) {
                fe.setReplyTimeoutMillis(10_000);
                fe.negotiate(VirtioFeature.VERSION_1.mask(),
                        ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.INFLIGHT_SHMFD));
                assertThrows(java.io.IOException.class, () -> fe.getInflightFd(numQueues, queueSize).close());
            }
            try (VhostUserFrontend next = VhostUserFrontend.connect(socket)) {
                next.setReplyTimeoutMillis(10_000);
                assertEquals(2, next.getQueueNum(), "the next front-end is served");
            }
        }
    }
}
