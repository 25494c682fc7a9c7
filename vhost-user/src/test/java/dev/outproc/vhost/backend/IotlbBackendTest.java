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
        /** What pop refused, as the device saw it. */
        final LinkedBlockingQueue<dev.outproc.core.virtqueue.VirtqueueException> refused = new LinkedBlockingQueue<>();

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
            while ((chain = popRecording(vring)) != null) {
                chain.readReadable(0, scratch, 0, 8);
                scratch.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, scratch.get(ValueLayout.JAVA_LONG_UNALIGNED, 0) + 1);
                chain.writeWritable(0, scratch, 0, 8);
                vring.complete(chain, 8);
            }
            vring.notifyGuest();
        }

        private DescriptorChain popRecording(VirtioQueue vring) throws dev.outproc.core.virtqueue.VirtqueueException {
            try {
                return vring.pop();
            } catch (dev.outproc.core.virtqueue.VirtqueueException e) {
                refused.add(e);
                throw e;
            }
        }
    }

    private GuestRegion ram;
    private IncrementDevice device;
    private VhostUserBackend backend;
    private Thread serving;
    private VhostUserFrontend fe;
    private final LinkedBlockingQueue<Long> misses = new LinkedBlockingQueue<>();

    @BeforeEach
    void connect() throws Exception {
        ram = GuestRegion.allocate(GPA, SIZE, UADDR);
        device = new IncrementDevice();
        backend = new VhostUserBackend(device, new VhostUserBackend.Options(1, false));
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

    /**
     * Finding: a ring whose start waited for its IOVA mapping and then failed (here a descriptor table at a
     * misaligned IOVA) kept its kick eventfd while neither started nor waiting; the next SET_VRING_KICK
     * overwrote it. Repeated, the process ran out of fds and accept4 failed for good. Every round must now
     * leave the fd count where it was, and the ring must still start once its addresses are right.
     */
    @Test
    void aRingStartThatFailsAfterTheIotlbUpdateShouldNotLeakItsKick() throws Exception {
        GpaAllocator allocator = new GpaAllocator(IOVA, IOVA + SIZE / 2);
        DriverQueue dq = SplitDriverQueue.allocate("iotlb", iovaView(), allocator, 16, 0, 0);
        QueueConfig c = dq.config();
        fe.setVringNum(0, c.size());
        fe.setVringAddr(0, c.descAddr() + 8, c.deviceAddr(), c.driverAddr(), false, 0); // misaligned table
        fe.setVringBase(0, 0);
        int rounds = 64;
        int before = TestFds.stable();
        for (int i = 0; i < rounds; i++) {
            try (dev.outproc.core.event.EventFd kick = dev.outproc.core.event.EventFd.create()) {
                fe.setVringKick(0, kick); // waits: nothing mapped
                assertNotNull(misses.poll(5, TimeUnit.SECONDS), "round " + i + ": the ring areas were asked for");
                assertThrows(IOException.class, () -> fe.iotlbUpdate(IOVA, SIZE, UADDR, Iotlb.ACCESS_RW),
                        "round " + i + ": the start after the update fails");
                fe.iotlbInvalidate(IOVA, SIZE);
            }
            misses.clear();
        }
        int after = TestFds.settle(before);
        assertEquals(before, after, "open fds after " + rounds + " failed starts");
        assertTrue(!backend.ring(0).isStarted());
        // The connection still works: with the addresses right the ring starts and serves.
        fe.iotlbUpdate(IOVA, SIZE, UADDR, Iotlb.ACCESS_RW);
        Ring ring = startRing(iovaView());
        long out = request(ring, 0, 99);
        ring.kickNow();
        assertTrue(awaitUsed(ring, 5000) != DriverQueue.NONE);
        assertEquals(100, ring.view().slice(out, 8).get(ValueLayout.JAVA_LONG_UNALIGNED, 0));
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

    /** One request with its readable and writable buffers at given IOVAs. */
    private void request(Ring ring, long in, long out, long value) throws Exception {
        ring.view().slice(in, 8).set(ValueLayout.JAVA_LONG_UNALIGNED, 0, value);
        ring.dq().add(in, 8, false);
        ring.dq().add(out, 8, true);
        assertTrue(ring.dq().post(false) >= 0);
        ring.dq().publish();
    }

    /**
     * Finding (issue 12, item 5): a write-only IOTLB entry was mapped readable. The device may write through
     * it (here the writable buffer), but a device-readable buffer there is refused like an address outside
     * memory: the chain is not served, the ring is broken, the error names the write-only mapping, and the
     * bytes behind it are neither read nor changed. No IOTLB miss is asked for: the IOVA is mapped.
     */
    @Test
    void aReadableBufferInAWriteOnlyEntryShouldBeRefused() throws Exception {
        long readWrite = IOVA + SIZE / 2;        // one page the device may read and write
        long writeOnly = readWrite + 4096;       // the rest of the buffer area: the device may only write
        fe.iotlbUpdate(IOVA, SIZE / 2, UADDR, Iotlb.ACCESS_RW);
        fe.iotlbUpdate(readWrite, 4096, UADDR + SIZE / 2, Iotlb.ACCESS_RW);
        fe.iotlbUpdate(writeOnly, SIZE / 2 - 4096, UADDR + SIZE / 2 + 4096, Iotlb.ACCESS_WO);
        Ring ring = startRing(iovaView());

        // A writable buffer in the write-only entry is what the entry is for.
        request(ring, readWrite, writeOnly, 41);
        ring.kickNow();
        assertTrue(awaitUsed(ring, 5000) != DriverQueue.NONE, "served: read from RW, written into WO");
        assertEquals(42, ring.view().slice(writeOnly, 8).get(ValueLayout.JAVA_LONG_UNALIGNED, 0));

        // A readable buffer in it is not.
        long secret = writeOnly + 64;
        long out = readWrite + 64;
        ring.view().slice(out, 8).set(ValueLayout.JAVA_LONG_UNALIGNED, 0, -1L);
        request(ring, secret, out, 1000);
        ring.kickNow();
        dev.outproc.core.virtqueue.VirtqueueException e = device.refused.poll(5, TimeUnit.SECONDS);
        assertNotNull(e, "the device's pop was refused");
        assertEquals(dev.outproc.core.virtqueue.VirtqueueException.Reason.BUFFER_OUTSIDE_MEMORY, e.reason());
        assertTrue(e.getMessage().contains("device-readable buffer in a write-only mapping"), e.getMessage());
        assertTrue(e.getMessage().contains(Long.toHexString(secret)), e.getMessage());
        assertEquals(DriverQueue.NONE, awaitUsed(ring, 200), "the chain was not completed");
        assertTrue(backend.ring(0).isBroken(), "the ring is broken, as for an address outside memory");
        assertEquals(-1L, ring.view().slice(out, 8).get(ValueLayout.JAVA_LONG_UNALIGNED, 0), "nothing was written");
        assertNull(misses.poll(100, TimeUnit.MILLISECONDS), "no IOTLB miss: the IOVA is mapped, only not readable");
    }

    /** Ring areas the device reads (descriptor table, available ring) in a write-only entry: the ring does not start. */
    @Test
    void ringAreasTheDeviceReadsShouldNotStartFromAWriteOnlyEntry() throws Exception {
        fe.iotlbUpdate(IOVA, SIZE, UADDR, Iotlb.ACCESS_WO);
        assertThrows(IOException.class, () -> startRing(iovaView()),
                "SET_VRING_KICK starts the ring and is refused");
        assertTrue(!backend.ring(0).isStarted(), "not started");
        assertTrue(misses.isEmpty(), "no miss: mapped, only not readable");
        // The connection is still usable: with a read-write mapping the same ring serves.
        fe.iotlbUpdate(IOVA, SIZE, UADDR, Iotlb.ACCESS_RW);
        Ring ring = startRing(iovaView());
        long out = request(ring, 0, 9);
        ring.kickNow();
        assertTrue(awaitUsed(ring, 5000) != DriverQueue.NONE, "served once readable");
        assertEquals(10, ring.view().slice(out, 8).get(ValueLayout.JAVA_LONG_UNALIGNED, 0));
    }

    /** A read-only entry under the used ring, or under a writable buffer, is refused the same way. */
    @Test
    void aWritableBufferInAReadOnlyEntryShouldBeRefused() throws Exception {
        long readOnly = IOVA + SIZE / 2;
        fe.iotlbUpdate(IOVA, SIZE / 2, UADDR, Iotlb.ACCESS_RW);
        fe.iotlbUpdate(readOnly, SIZE / 2, UADDR + SIZE / 2, Iotlb.ACCESS_RO);
        Ring ring = startRing(iovaView());
        long out = readOnly + 64;
        ring.view().slice(out, 8).set(ValueLayout.JAVA_LONG_UNALIGNED, 0, -1L);
        request(ring, readOnly, out, 5);
        ring.kickNow();
        dev.outproc.core.virtqueue.VirtqueueException e = device.refused.poll(5, TimeUnit.SECONDS);
        assertNotNull(e, "the device's pop was refused");
        assertTrue(e.getMessage().contains("device-writable buffer in a read-only mapping"), e.getMessage());
        assertTrue(backend.ring(0).isBroken());
        assertEquals(-1L, ring.view().slice(out, 8).get(ValueLayout.JAVA_LONG_UNALIGNED, 0), "nothing was written");
    }

}
