package dev.outproc.vhost.backend;

import dev.outproc.core.virtio.VirtioQueue;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.core.virtqueue.DescriptorChain;
import dev.outproc.core.virtqueue.DriverQueue;
import dev.outproc.core.virtqueue.GpaAllocator;
import dev.outproc.core.virtqueue.QueueConfig;
import dev.outproc.core.virtqueue.SplitDriverQueue;
import dev.outproc.vhost.frontend.FrontendException;
import dev.outproc.vhost.frontend.VhostUserFrontend;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.core.virtio.VirtioFeature;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A device behind an IOMMU (VIRTIO_F_ACCESS_PLATFORM): rings and buffers are addressed by IOVA, the
 * front-end maps them with IOTLB_MSG updates, and the back-end asks for what it misses on the back-end
 * channel and resumes once the update arrives.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class IotlbBackendTest {
    private static final long GPA = 0x4000_0000L;
    private static final long UADDR = 0x7f55_0000_0000L;
    private static final long IOVA = 0xfee0_0000_0000L;
    private static final long SIZE = 1 << 20;

    /** Reads a u64 from the readable bytes, writes it plus one into the writable ones. */
    static final class IncrementDevice implements VhostUserDevice {
        final MemorySegment scratch = java.lang.foreign.Arena.ofAuto().allocate(8);

        @Override
        public long features() {
            return VirtioFeature.maskOf(VirtioFeature.VERSION_1, VirtioFeature.ACCESS_PLATFORM);
        }

        @Override
        public int queueCount() {
            return 1;
        }

        @Override
        public void processQueue(VirtioQueue vring) throws IOException {
            DescriptorChain chain;
            while ((chain = vring.pop()) != null) {
                chain.readReadable(0, scratch, 0, 8);
                scratch.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, scratch.get(ValueLayout.JAVA_LONG_UNALIGNED, 0) + 1);
                chain.writeWritable(0, scratch, 0, 8);
                vring.complete(chain, 8);
            }
            vring.notifyGuest();
        }
    }

    private GuestRegion ram;
    private VhostUserBackend backend;
    private Thread serving;
    private VhostUserFrontend fe;
    private final LinkedBlockingQueue<Long> misses = new LinkedBlockingQueue<>();

    @BeforeEach
    void connect() throws Exception {
        ram = GuestRegion.allocate(GPA, SIZE, UADDR);
        backend = new VhostUserBackend(new IncrementDevice(), new VhostUserBackend.Options(1, false));
        MessageChannel.Pair pair = MessageChannel.pair();
        MessageChannel backendEnd = MessageChannel.adopt(pair.peerFd());
        serving = Thread.ofPlatform().daemon(true).start(() -> {
            try {
                backend.serve(backendEnd);
            } catch (IOException ignored) {
                // the test closes the connection
            }
        });
        fe = VhostUserFrontend.over(pair.channel());
        long acked = fe.negotiate(VirtioFeature.maskOf(VirtioFeature.VERSION_1, VirtioFeature.ACCESS_PLATFORM),
                ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.BACKEND_REQ));
        assertTrue(VirtioFeature.ACCESS_PLATFORM.isSetIn(acked));
        fe.openBackendChannel(new VhostUserFrontend.BackendRequestHandler() {
            @Override
            public void iotlbMiss(long iova, int access) {
                misses.add(iova);
            }
        });
        fe.setMemTable(GuestMemory.of(List.of(ram)));
    }

    @AfterEach
    void close() throws Exception {
        fe.close();
        serving.join(10_000);
        backend.close();
        ram.close();
    }

    /** The driver's view: the same bytes at IOVAs. */
    private GuestMemory iovaView() throws Exception {
        return GuestMemory.of(List.of(GuestRegion.view(IOVA, SIZE, ram, 0, true)));
    }

    private record Ring(DriverQueue dq, dev.outproc.core.event.EventFd kick, dev.outproc.core.event.EventFd call,
                        GuestMemory view, long buffers) {
        void kickNow() throws IOException {
            kick.signal();
        }
    }

    private Ring startRing(GuestMemory view) throws Exception {
        GpaAllocator allocator = new GpaAllocator(IOVA, IOVA + SIZE / 2);
        DriverQueue dq = SplitDriverQueue.allocate("iotlb", view, allocator, 16, 0, 0);
        QueueConfig c = dq.config();
        // The ring addresses the back-end gets are IOVAs (vhost-user.rst, IOMMU support).
        fe.setVringNum(0, c.size());
        fe.setVringAddr(0, c.descAddr(), c.deviceAddr(), c.driverAddr(), false, 0);
        fe.setVringBase(0, 0);
        dev.outproc.core.event.EventFd call = dev.outproc.core.event.EventFd.create();
        dev.outproc.core.event.EventFd kick = dev.outproc.core.event.EventFd.create();
        fe.setVringCall(0, call);
        fe.setVringKick(0, kick);
        fe.setVringEnable(0, true);
        return new Ring(dq, kick, call, view, IOVA + SIZE / 2);
    }

    private long request(Ring ring, int i, long value) throws Exception {
        long in = ring.buffers() + i * 64L;
        long out = in + 32;
        ring.view().slice(in, 8).set(ValueLayout.JAVA_LONG_UNALIGNED, 0, value);
        ring.dq().add(in, 8, false);
        ring.dq().add(out, 8, true);
        assertTrue(ring.dq().post(false) >= 0);
        ring.dq().publish();
        return out;
    }

    private long awaitUsed(Ring ring, long timeoutMillis) throws Exception {
        long deadline = System.nanoTime() + timeoutMillis * 1_000_000;
        while (System.nanoTime() < deadline) {
            long used = ring.dq().pollUsed();
            if (used != DriverQueue.NONE) {
                return used;
            }
            Thread.sleep(1);
        }
        return DriverQueue.NONE;
    }

    @Test
    void mappedRingsAndBuffersShouldWorkThroughIovas() throws Exception {
        fe.iotlbUpdate(IOVA, SIZE, UADDR, Iotlb.ACCESS_RW);
        Ring ring = startRing(iovaView());
        for (int i = 0; i < 10; i++) {
            long out = request(ring, i, 1000 + i);
            ring.kickNow();
            assertTrue(awaitUsed(ring, 5000) != DriverQueue.NONE, "request " + i);
            assertEquals(1001 + i, ring.view().slice(out, 8).get(ValueLayout.JAVA_LONG_UNALIGNED, 0));
        }
        assertTrue(misses.isEmpty(), "no miss: everything was mapped");
    }

    @Test
    void missesShouldBeAskedForAndServedAfterTheUpdate() throws Exception {
        // Only the ring half is mapped: the buffers miss.
        fe.iotlbUpdate(IOVA, SIZE / 2, UADDR, Iotlb.ACCESS_RW);
        Ring ring = startRing(iovaView());
        long out = request(ring, 0, 41);
        ring.kickNow();
        Long missed = misses.poll(5, TimeUnit.SECONDS);
        assertNotNull(missed, "the back-end asked for the buffer's translation");
        assertEquals(ring.buffers(), missed.longValue());
        assertEquals(DriverQueue.NONE, awaitUsed(ring, 100), "nothing completes before the update");
        fe.iotlbUpdate(IOVA + SIZE / 2, SIZE / 2, UADDR + SIZE / 2, Iotlb.ACCESS_RW);
        assertTrue(awaitUsed(ring, 5000) != DriverQueue.NONE, "served after the update");
        assertEquals(42, ring.view().slice(out, 8).get(ValueLayout.JAVA_LONG_UNALIGNED, 0));
        assertTrue(!backend.ring(0).isBroken(), "a miss does not break the ring");
    }

    @Test
    void unmappedRingsShouldWaitForTheirMappingBeforeStarting() throws Exception {
        Ring ring = startRing(iovaView());
        Long missed = misses.poll(5, TimeUnit.SECONDS);
        assertNotNull(missed, "the ring areas were asked for");
        assertEquals(ring.dq().config().descAddr(), missed.longValue());
        assertTrue(!backend.ring(0).isStarted(), "not started while its areas are unmapped");
        fe.iotlbUpdate(IOVA, SIZE, UADDR, Iotlb.ACCESS_RW);
        long out = request(ring, 0, 7);
        ring.kickNow();
        assertTrue(awaitUsed(ring, 5000) != DriverQueue.NONE);
        assertEquals(8, ring.view().slice(out, 8).get(ValueLayout.JAVA_LONG_UNALIGNED, 0));
    }

    @Test
    void invalidatedRangesShouldMissAgainAndBadMessagesBeRefused() throws Exception {
        fe.iotlbUpdate(IOVA, SIZE / 2, UADDR, Iotlb.ACCESS_RW);                  // rings
        fe.iotlbUpdate(IOVA + SIZE / 2, SIZE / 2, UADDR + SIZE / 2, Iotlb.ACCESS_RW); // buffers
        Ring ring = startRing(iovaView());
        long out = request(ring, 0, 5);
        ring.kickNow();
        assertTrue(awaitUsed(ring, 5000) != DriverQueue.NONE);
        assertEquals(6, ring.view().slice(out, 8).get(ValueLayout.JAVA_LONG_UNALIGNED, 0));
        fe.iotlbInvalidate(IOVA + SIZE / 2, 4096); // removes the whole buffer entry it touches
        request(ring, 1, 1);
        ring.kickNow();
        assertNotNull(misses.poll(5, TimeUnit.SECONDS), "an invalidated buffer misses");
        fe.iotlbUpdate(IOVA + SIZE / 2, SIZE / 2, UADDR + SIZE / 2, Iotlb.ACCESS_RW);
        assertTrue(awaitUsed(ring, 5000) != DriverQueue.NONE, "served once mapped again");
        assertThrows(FrontendException.class, () -> fe.iotlbUpdate(-4096, 8192, UADDR, Iotlb.ACCESS_RW), "wraps");
        assertThrows(FrontendException.class, () -> fe.iotlbUpdate(0, 4096, UADDR, 7), "bad access");
        assertThrows(FrontendException.class, () -> fe.iotlbUpdate(0, 0, UADDR, Iotlb.ACCESS_RW), "empty");
    }

}
