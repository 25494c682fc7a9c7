package dev.outproc.core.virtqueue;

import dev.outproc.core.memory.Layouts;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtqueue.VirtqueueException.Reason;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A guest must not make the device hold heap in proportion to what it writes into its rings: chains
 * are capped at {@link DescriptorChain#MAX_BUFFERS} buffers, zero-length descriptors are refused, and a
 * chain object gives back an oversized buffer array once it completes. Heap is measured through
 * {@link DescriptorChain#bufferCapacity()} (24 bytes of retained heap per buffer of room).
 */
class ChainHeapBoundTest {
    private static final long FEATURES = VirtioFeature.INDIRECT_DESC.mask();
    private static final int NEXT = 1;
    private static final int INDIRECT = 4;
    private static final int QUEUE_SIZE = 1024;
    private static final long BYTES_PER_BUFFER = 24;

    private GuestRam ram;
    private long data;

    @BeforeEach
    void setUp() throws Exception {
        ram = new GuestRam(4L << 20);
        data = ram.allocator.allocate(4096, 4096);
    }

    @AfterEach
    void tearDown() {
        ram.close();
    }

    private QueueConfig splitRing(int size) throws Exception {
        return SplitDriverQueue.allocate("heap-bound", ram.memory, ram.allocator, size, FEATURES, 0).config();
    }

    private void descriptor(long gpa, int index, long addr, int len, int flags, int next) {
        MemorySegment d = ram.at(gpa + 16L * index, 16);
        d.set(Layouts.LE_U64, 0, addr);
        d.set(Layouts.LE_U32, 8, len);
        d.set(Layouts.LE_U16, 12, (short) flags);
        d.set(Layouts.LE_U16, 14, (short) next);
    }

    /** An indirect table of {@code entries} one-byte readable buffers, chained with NEXT. */
    private long indirectTable(int entries) {
        long table = ram.allocator.allocate(16L * entries, 16);
        for (int i = 0; i < entries; i++) {
            descriptor(table, i, data, 1, i + 1 < entries ? NEXT : 0, i + 1 < entries ? i + 1 : 0);
        }
        return table;
    }

    /** Every head of the ring points at the same indirect table, and all of them are made available. */
    private SplitQueue everyHeadPointsAt(QueueConfig c, long table, int tableBytes) throws Exception {
        for (int head = 0; head < c.size(); head++) {
            descriptor(c.descAddr(), head, table, tableBytes, INDIRECT, 0);
            ram.at(c.driverAddr() + 4 + 2L * head, 2).set(Layouts.LE_U16_ALIGNED, 0, (short) head);
        }
        ram.at(c.driverAddr() + 2, 2).set(Layouts.LE_U16_ALIGNED, 0, (short) c.size());
        SplitQueue q = new SplitQueue("heap-bound");
        q.configure(c, ram.memory);
        return q;
    }

    @Test
    void shouldNotPinHeapWhenEveryHeadReferencesAOneMebibyteIndirectTable() throws Exception {
        QueueConfig c = splitRing(QUEUE_SIZE);
        int entries = (1 << 20) / 16;
        SplitQueue q = everyHeadPointsAt(c, indirectTable(entries), entries * 16);
        long retainedBytes = 0;
        List<DescriptorChain> popped = new ArrayList<>();
        VirtqueueException failure = null;
        try {
            DescriptorChain chain;
            while ((chain = q.pop()) != null) {
                popped.add(chain);
                retainedBytes += BYTES_PER_BUFFER * chain.bufferCapacity();
                assertTrue(chain.bufferCapacity() <= DescriptorChain.MAX_BUFFERS,
                        "chain " + chain.id() + " holds room for " + chain.bufferCapacity() + " buffers");
            }
        } catch (VirtqueueException e) {
            failure = e;
        }
        assertTrue(retainedBytes <= (long) QUEUE_SIZE * DescriptorChain.MAX_BUFFERS * BYTES_PER_BUFFER,
                "retained " + retainedBytes + " bytes");
        assertTrue(popped.isEmpty(), "no chain of a 65536-entry table is handed out, got " + popped.size());
        assertTrue(failure != null, "the table is refused");
        assertEquals(Reason.INDIRECT_TABLE_TOO_LONG, failure.reason());
        assertTrue(failure.getMessage().contains("entries=65536"), failure.getMessage());
        assertTrue(failure.getMessage().contains("limit=" + DescriptorChain.MAX_BUFFERS), failure.getMessage());
        assertTrue(q.isBroken());
    }

    @Test
    void shouldBoundHeapWhileInFlightAndReleaseItOnCompletion() throws Exception {
        QueueConfig c = splitRing(QUEUE_SIZE);
        int entries = DescriptorChain.MAX_BUFFERS;
        SplitQueue q = everyHeadPointsAt(c, indirectTable(entries), entries * 16);
        List<DescriptorChain> inFlight = new ArrayList<>();
        long retainedBytes = 0;
        DescriptorChain chain;
        while ((chain = q.pop()) != null) {
            assertEquals(entries, chain.bufferCount());
            inFlight.add(chain);
            retainedBytes += BYTES_PER_BUFFER * chain.bufferCapacity();
        }
        assertEquals(QUEUE_SIZE, inFlight.size(), "a table of exactly the cap is served under every head");
        assertTrue(retainedBytes <= (long) QUEUE_SIZE * DescriptorChain.MAX_BUFFERS * BYTES_PER_BUFFER,
                "retained " + retainedBytes + " bytes while in flight");
        long afterBytes = 0;
        for (DescriptorChain done : inFlight) {
            q.addUsed(done, 0);
            afterBytes += BYTES_PER_BUFFER * done.bufferCapacity();
        }
        assertTrue(afterBytes <= (long) QUEUE_SIZE * 64 * BYTES_PER_BUFFER,
                "completed chains keep at most 64 buffers of room each, retained " + afterBytes + " bytes");
        assertNull(q.pop());
    }

    @Test
    void shouldRejectChainLongerThanTheCapAcrossDirectAndIndirect() throws Exception {
        QueueConfig c = splitRing(16);
        long table = indirectTable(DescriptorChain.MAX_BUFFERS);
        descriptor(c.descAddr(), 0, data, 8, NEXT, 1);
        descriptor(c.descAddr(), 1, table, DescriptorChain.MAX_BUFFERS * 16, INDIRECT, 0);
        ram.at(c.driverAddr() + 4, 2).set(Layouts.LE_U16_ALIGNED, 0, (short) 0);
        ram.at(c.driverAddr() + 2, 2).set(Layouts.LE_U16_ALIGNED, 0, (short) 1);
        SplitQueue q = new SplitQueue("heap-bound");
        q.configure(c, ram.memory);
        VirtqueueException e = assertThrows(VirtqueueException.class, q::pop);
        assertEquals(Reason.CHAIN_TOO_LONG, e.reason());
        assertTrue(e.getMessage().contains("buffers > 1024"), e.getMessage());
        assertTrue(q.isBroken());
    }

    @Test
    void shouldCountZeroLengthDescriptorsAgainstTheCap() throws Exception {
        QueueConfig c = splitRing(16);
        long table = ram.allocator.allocate(16L * DescriptorChain.MAX_BUFFERS, 16);
        for (int i = 0; i < DescriptorChain.MAX_BUFFERS; i++) {
            descriptor(table, i, data, 0, i + 1 < DescriptorChain.MAX_BUFFERS ? NEXT : 0, i + 1);
        }
        descriptor(c.descAddr(), 0, data, 8, NEXT, 1);
        descriptor(c.descAddr(), 1, table, DescriptorChain.MAX_BUFFERS * 16, INDIRECT, 0);
        ram.at(c.driverAddr() + 4, 2).set(Layouts.LE_U16_ALIGNED, 0, (short) 0);
        ram.at(c.driverAddr() + 2, 2).set(Layouts.LE_U16_ALIGNED, 0, (short) 1);
        SplitQueue q = new SplitQueue("heap-bound");
        q.configure(c, ram.memory);
        VirtqueueException e = assertThrows(VirtqueueException.class, q::pop);
        assertEquals(Reason.CHAIN_TOO_LONG, e.reason());
    }

    @Test
    void shouldAcceptZeroLengthDescriptorAsRealDriversMaySendIt() throws Exception {
        QueueConfig c = splitRing(16);
        descriptor(c.descAddr(), 0, data, 16, NEXT, 1);
        descriptor(c.descAddr(), 1, data + 64, 0, 0, 0);
        ram.at(c.driverAddr() + 4, 2).set(Layouts.LE_U16_ALIGNED, 0, (short) 0);
        ram.at(c.driverAddr() + 2, 2).set(Layouts.LE_U16_ALIGNED, 0, (short) 1);
        SplitQueue q = new SplitQueue("heap-bound");
        q.configure(c, ram.memory);
        DescriptorChain chain = q.pop();
        assertEquals(2, chain.bufferCount());
        assertEquals(0, chain.length(1));
        assertEquals(16, chain.totalReadable());
    }
}
