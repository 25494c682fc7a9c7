package dev.outproc.core.virtqueue;

import dev.outproc.core.memory.Layouts;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtqueue.VirtqueueException.Reason;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One test per rule a hostile guest can break. Each builds the offending ring by hand, pops, and checks
 * the typed error, that its message names the queue and the values, that the queue is broken, and that
 * no byte of guest memory changed.
 */
class HostileGuestTest {
    private static final long F_ALL = VirtioFeature.INDIRECT_DESC.mask() | VirtioFeature.EVENT_IDX.mask();
    private static final int SIZE = 16;
    private static final int NEXT = 1;
    private static final int WRITE = 2;
    private static final int INDIRECT = 4;
    private static final int AVAIL = 1 << 7;
    private static final int USED = 1 << 15;

    private GuestRam ram;
    private long data;

    @BeforeEach
    void setUp() throws Exception {
        ram = new GuestRam(8L << 20);
        data = ram.allocator.allocate(64 * 1024, 4096);
    }

    @AfterEach
    void tearDown() {
        ram.close();
    }

    // ---- split ring helpers ----

    private QueueConfig splitRing(int size, long features) throws Exception {
        return SplitDriverQueue.allocate("hostile-split", ram.memory, ram.allocator, size, features, 0).config();
    }

    private void splitDesc(QueueConfig c, int index, long addr, int len, int flags, int next) {
        MemorySegment d = ram.at(c.descAddr() + 16L * index, 16);
        d.set(Layouts.LE_U64, 0, addr);
        d.set(Layouts.LE_U32, 8, len);
        d.set(Layouts.LE_U16, 12, (short) flags);
        d.set(Layouts.LE_U16, 14, (short) next);
    }

    private void splitAvail(QueueConfig c, int... heads) {
        for (int i = 0; i < heads.length; i++) {
            ram.at(c.driverAddr() + 4 + 2L * i, 2).set(Layouts.LE_U16_ALIGNED, 0, (short) heads[i]);
        }
        ram.at(c.driverAddr() + 2, 2).set(Layouts.LE_U16_ALIGNED, 0, (short) heads.length);
    }

    private void writeTable(long gpa, int index, long addr, int len, int flags, int next) {
        MemorySegment d = ram.at(gpa + 16L * index, 16);
        d.set(Layouts.LE_U64, 0, addr);
        d.set(Layouts.LE_U32, 8, len);
        d.set(Layouts.LE_U16, 12, (short) flags);
        d.set(Layouts.LE_U16, 14, (short) next);
    }

    private SplitQueue split(QueueConfig c) throws Exception {
        SplitQueue q = new SplitQueue("x");
        q.configure(c, ram.memory);
        return q;
    }

    /** Pops, expects the reason, checks the message, brokenness and that memory is unchanged. */
    private VirtqueueException expectPopFails(DeviceQueue q, Reason reason, String... valuesInMessage) {
        byte[] before = ram.snapshot();
        VirtqueueException e = assertThrows(VirtqueueException.class, q::pop);
        assertEquals(reason, e.reason(), e.getMessage());
        assertTrue(e.getMessage().contains(q.config().name()), "message names the queue: " + e.getMessage());
        for (String v : valuesInMessage) {
            assertTrue(e.getMessage().contains(v), "message carries " + v + ": " + e.getMessage());
        }
        assertTrue(q.isBroken(), "queue is broken after " + reason);
        VirtqueueException again = assertThrows(VirtqueueException.class, q::pop);
        assertEquals(Reason.BROKEN, again.reason());
        assertArrayEquals(before, ram.snapshot(), "guest memory changed");
        return e;
    }

    private VirtqueueException expectConfigureFails(DeviceQueue q, QueueConfig c, Reason reason) {
        byte[] before = ram.snapshot();
        VirtqueueException e = assertThrows(VirtqueueException.class, () -> q.configure(c, ram.memory));
        assertEquals(reason, e.reason(), e.getMessage());
        assertArrayEquals(before, ram.snapshot(), "guest memory changed");
        return e;
    }

    // ---- split ring rules ----

    @Test
    void shouldRejectDescriptorLoop() throws Exception {
        QueueConfig c = splitRing(SIZE, F_ALL);
        splitDesc(c, 0, data, 64, NEXT, 1);
        splitDesc(c, 1, data, 64, NEXT, 0);
        splitAvail(c, 0);
        expectPopFails(split(c), Reason.DESCRIPTOR_LOOP, "head=0", "size=" + SIZE);
    }

    @Test
    void shouldRejectHeadIndexOutOfRange() throws Exception {
        QueueConfig c = splitRing(SIZE, F_ALL);
        splitAvail(c, SIZE);
        expectPopFails(split(c), Reason.DESCRIPTOR_INDEX_OUT_OF_RANGE, "head=" + SIZE);
    }

    @Test
    void shouldRejectNextIndexOutOfRange() throws Exception {
        QueueConfig c = splitRing(SIZE, F_ALL);
        splitDesc(c, 3, data, 64, NEXT, 0xffff);
        splitAvail(c, 3);
        expectPopFails(split(c), Reason.DESCRIPTOR_INDEX_OUT_OF_RANGE, "next=65535");
    }

    @Test
    void shouldRejectAddressOutsideMemory() throws Exception {
        QueueConfig c = splitRing(SIZE, F_ALL);
        splitDesc(c, 0, 0x4000_0000L, 64, 0, 0);
        splitAvail(c, 0);
        expectPopFails(split(c), Reason.BUFFER_OUTSIDE_MEMORY, "0x40000000");
    }

    @Test
    void shouldRejectBufferCrossingTheEndOfMemory() throws Exception {
        QueueConfig c = splitRing(SIZE, F_ALL);
        long last = GuestRam.BASE + (8L << 20) - 16;
        splitDesc(c, 0, last, 32, WRITE, 0);
        splitAvail(c, 0);
        expectPopFails(split(c), Reason.BUFFER_OUTSIDE_MEMORY, "len=32");
    }

    @Test
    void shouldRejectAddressOverflow() throws Exception {
        QueueConfig c = splitRing(SIZE, F_ALL);
        splitDesc(c, 0, 0xffff_ffff_ffff_ff00L, 0x1000, 0, 0);
        splitAvail(c, 0);
        expectPopFails(split(c), Reason.ADDRESS_OVERFLOW, "0xffffffffffffff00");
    }

    @Test
    void shouldRejectAvailIndexJump() throws Exception {
        QueueConfig c = splitRing(SIZE, F_ALL);
        ram.at(c.driverAddr() + 2, 2).set(Layouts.LE_U16_ALIGNED, 0, (short) (SIZE + 1));
        expectPopFails(split(c), Reason.AVAIL_INDEX_JUMP, "avail idx=" + (SIZE + 1));
    }

    @Test
    void shouldRejectReadableAfterWritable() throws Exception {
        QueueConfig c = splitRing(SIZE, F_ALL);
        splitDesc(c, 0, data, 64, WRITE | NEXT, 1);
        splitDesc(c, 1, data + 64, 64, 0, 0);
        splitAvail(c, 0);
        expectPopFails(split(c), Reason.WRITE_THEN_READ);
    }

    @Test
    void shouldRejectNestedIndirect() throws Exception {
        QueueConfig c = splitRing(SIZE, F_ALL);
        long table = data + 4096;
        writeTable(table, 0, data, 64, NEXT, 1);
        writeTable(table, 1, table, 32, INDIRECT, 0);
        splitDesc(c, 0, table, 32, INDIRECT, 0);
        splitAvail(c, 0);
        expectPopFails(split(c), Reason.NESTED_INDIRECT);
    }

    @Test
    void shouldRejectZeroLengthIndirectTable() throws Exception {
        QueueConfig c = splitRing(SIZE, F_ALL);
        splitDesc(c, 0, data, 0, INDIRECT, 0);
        splitAvail(c, 0);
        expectPopFails(split(c), Reason.INDIRECT_TABLE_EMPTY);
    }

    @Test
    void shouldRejectIndirectTableLengthNotMultipleOf16() throws Exception {
        QueueConfig c = splitRing(SIZE, F_ALL);
        splitDesc(c, 0, data, 24, INDIRECT, 0);
        splitAvail(c, 0);
        expectPopFails(split(c), Reason.INDIRECT_TABLE_MISALIGNED, "len=24");
    }

    @Test
    void shouldRejectIndirectTableTooLong() throws Exception {
        QueueConfig c = splitRing(SIZE, F_ALL);
        splitDesc(c, 0, data, 65536 * 16, INDIRECT, 0);
        splitAvail(c, 0);
        expectPopFails(split(c), Reason.INDIRECT_TABLE_TOO_LONG, "entries=65536");
    }

    @Test
    void shouldRejectIndirectTableOutsideMemory() throws Exception {
        QueueConfig c = splitRing(SIZE, F_ALL);
        splitDesc(c, 0, 0x1000, 64, INDIRECT, 0);
        splitAvail(c, 0);
        expectPopFails(split(c), Reason.BUFFER_OUTSIDE_MEMORY, "0x1000");
    }

    @Test
    void shouldRejectLoopInsideIndirectTable() throws Exception {
        QueueConfig c = splitRing(SIZE, F_ALL);
        long table = data + 4096;
        writeTable(table, 0, data, 64, NEXT, 1);
        writeTable(table, 1, data, 64, NEXT, 0);
        splitDesc(c, 0, table, 32, INDIRECT, 0);
        splitAvail(c, 0);
        expectPopFails(split(c), Reason.DESCRIPTOR_LOOP, "entries=2");
    }

    @Test
    void shouldRejectIndirectWhenNotNegotiated() throws Exception {
        QueueConfig c = splitRing(SIZE, VirtioFeature.EVENT_IDX.mask());
        long table = data + 4096;
        writeTable(table, 0, data, 64, 0, 0);
        splitDesc(c, 0, table, 16, INDIRECT, 0);
        splitAvail(c, 0);
        expectPopFails(split(c), Reason.INDIRECT_NOT_NEGOTIATED);
    }

    @Test
    void shouldRejectIndirectWithNext() throws Exception {
        QueueConfig c = splitRing(SIZE, F_ALL);
        long table = data + 4096;
        writeTable(table, 0, data, 64, 0, 0);
        splitDesc(c, 0, table, 16, INDIRECT | NEXT, 1);
        splitDesc(c, 1, data, 64, 0, 0);
        splitAvail(c, 0);
        expectPopFails(split(c), Reason.INDIRECT_WITH_NEXT);
    }

    @Test
    void shouldRejectChainLongerThan4GiB() throws Exception {
        int size = 1024;
        QueueConfig c = splitRing(size, F_ALL);
        long chunk = 4L << 20;
        int n = (int) ((1L << 32) / chunk) + 1;
        for (int i = 0; i < n; i++) {
            splitDesc(c, i, GuestRam.BASE, (int) chunk, i + 1 < n ? NEXT : 0, i + 1);
        }
        splitAvail(c, 0);
        expectPopFails(split(c), Reason.CHAIN_TOO_LARGE, "limit=4294967295");
    }

    @Test
    void shouldRejectHeadAlreadyInFlight() throws Exception {
        QueueConfig c = splitRing(SIZE, F_ALL);
        splitDesc(c, 0, data, 64, 0, 0);
        splitAvail(c, 0, 0);
        SplitQueue q = split(c);
        q.pop();
        expectPopFails(q, Reason.DESCRIPTOR_IN_USE, "head=0");
    }

    @Test
    void shouldRejectMisalignedSplitRings() throws Exception {
        QueueConfig c = splitRing(SIZE, F_ALL);
        expectConfigureFails(new SplitQueue("x"), new QueueConfig("m", SIZE, c.descAddr() + 8, c.driverAddr(),
                c.deviceAddr(), F_ALL), Reason.RING_MISALIGNED);
        expectConfigureFails(new SplitQueue("x"), new QueueConfig("m", SIZE, c.descAddr(), c.driverAddr() + 1,
                c.deviceAddr(), F_ALL), Reason.RING_MISALIGNED);
        expectConfigureFails(new SplitQueue("x"), new QueueConfig("m", SIZE, c.descAddr(), c.driverAddr(),
                c.deviceAddr() + 2, F_ALL), Reason.RING_MISALIGNED);
    }

    @Test
    void shouldRejectRingOutsideMemory() throws Exception {
        QueueConfig c = splitRing(SIZE, F_ALL);
        long end = GuestRam.BASE + (8L << 20);
        expectConfigureFails(new SplitQueue("x"), new QueueConfig("m", SIZE, end - 128, c.driverAddr(),
                c.deviceAddr(), F_ALL), Reason.RING_OUTSIDE_MEMORY);
        expectConfigureFails(new PackedQueue("x"), new QueueConfig("m", SIZE, c.descAddr(), 0xffff_ffff_ffff_fffcL,
                c.deviceAddr(), F_ALL), Reason.RING_OUTSIDE_MEMORY);
    }

    @Test
    void shouldRejectInvalidQueueSizes() throws Exception {
        QueueConfig c = splitRing(SIZE, F_ALL);
        for (int size : new int[] {0, 3, 100, 65536, -1}) {
            expectConfigureFails(new SplitQueue("x"), new QueueConfig("m", size, c.descAddr(), c.driverAddr(),
                    c.deviceAddr(), F_ALL), Reason.QUEUE_SIZE_INVALID);
        }
        for (int size : new int[] {0, 32769}) {
            expectConfigureFails(new PackedQueue("x"), new QueueConfig("m", size, c.descAddr(), c.driverAddr(),
                    c.deviceAddr(), F_ALL), Reason.QUEUE_SIZE_INVALID);
        }
    }

    // ---- packed ring rules ----

    private QueueConfig packedRing(int size, long features) throws Exception {
        return PackedDriverQueue.allocate("hostile-packed", ram.memory, ram.allocator, size, features, 0).config();
    }

    /** Writes a descriptor that is available for wrap counter 1. */
    private void packedDesc(QueueConfig c, int slot, long addr, int len, int id, int flags) {
        MemorySegment d = ram.at(c.descAddr() + 16L * slot, 16);
        d.set(Layouts.LE_U64, 0, addr);
        d.set(Layouts.LE_U32, 8, len);
        d.set(Layouts.LE_U16, 12, (short) id);
        d.set(Layouts.LE_U16, 14, (short) (flags | AVAIL));
    }

    private void writePackedTable(long gpa, int index, long addr, int len, int flags) {
        MemorySegment d = ram.at(gpa + 16L * index, 16);
        d.set(Layouts.LE_U64, 0, addr);
        d.set(Layouts.LE_U32, 8, len);
        d.set(Layouts.LE_U16, 12, (short) 0);
        d.set(Layouts.LE_U16, 14, (short) flags);
    }

    private PackedQueue packed(QueueConfig c) throws Exception {
        PackedQueue q = new PackedQueue("x");
        q.configure(c, ram.memory);
        return q;
    }

    @Test
    void shouldRejectPackedChainLongerThanRing() throws Exception {
        QueueConfig c = packedRing(SIZE, F_ALL);
        for (int i = 0; i < SIZE; i++) {
            packedDesc(c, i, data, 64, 0, NEXT);
        }
        expectPopFails(packed(c), Reason.DESCRIPTOR_LOOP, "size=" + SIZE);
    }

    @Test
    void shouldRejectPackedBufferIdOutOfRange() throws Exception {
        QueueConfig c = packedRing(SIZE, F_ALL);
        packedDesc(c, 0, data, 64, SIZE, 0);
        expectPopFails(packed(c), Reason.BUFFER_ID_OUT_OF_RANGE, "buffer id=" + SIZE);
    }

    @Test
    void shouldRejectPackedBufferIdInUse() throws Exception {
        QueueConfig c = packedRing(SIZE, F_ALL);
        packedDesc(c, 0, data, 64, 5, 0);
        packedDesc(c, 1, data, 64, 5, 0);
        PackedQueue q = packed(c);
        q.pop();
        expectPopFails(q, Reason.BUFFER_ID_IN_USE, "buffer id=5");
    }

    @Test
    void shouldRejectPackedNestedIndirect() throws Exception {
        QueueConfig c = packedRing(SIZE, F_ALL);
        long table = data + 4096;
        writePackedTable(table, 0, data, 64, 0);
        writePackedTable(table, 1, table, 16, INDIRECT);
        packedDesc(c, 0, table, 32, 0, INDIRECT);
        expectPopFails(packed(c), Reason.NESTED_INDIRECT);
    }

    @Test
    void shouldRejectPackedZeroLengthIndirectTable() throws Exception {
        QueueConfig c = packedRing(SIZE, F_ALL);
        packedDesc(c, 0, data, 0, 0, INDIRECT);
        expectPopFails(packed(c), Reason.INDIRECT_TABLE_EMPTY);
    }

    @Test
    void shouldRejectPackedReadableAfterWritable() throws Exception {
        QueueConfig c = packedRing(SIZE, F_ALL);
        packedDesc(c, 0, data, 64, 0, WRITE | NEXT);
        packedDesc(c, 1, data, 64, 0, 0);
        expectPopFails(packed(c), Reason.WRITE_THEN_READ);
    }

    @Test
    void shouldRejectPackedAddressOutsideMemoryAndOverflow() throws Exception {
        QueueConfig c = packedRing(SIZE, F_ALL);
        packedDesc(c, 0, 0x2000_0000_0000L, 64, 0, 0);
        expectPopFails(packed(c), Reason.BUFFER_OUTSIDE_MEMORY, "0x200000000000");
        QueueConfig d = packedRing(SIZE, F_ALL);
        packedDesc(d, 0, -16, 64, 0, 0);
        expectPopFails(packed(d), Reason.ADDRESS_OVERFLOW);
    }

    @Test
    void shouldRejectMisalignedPackedRings() throws Exception {
        QueueConfig c = packedRing(SIZE, F_ALL);
        expectConfigureFails(new PackedQueue("x"), new QueueConfig("m", SIZE, c.descAddr() + 4, c.driverAddr(),
                c.deviceAddr(), F_ALL), Reason.RING_MISALIGNED);
        expectConfigureFails(new PackedQueue("x"), new QueueConfig("m", SIZE, c.descAddr(), c.driverAddr() + 2,
                c.deviceAddr(), F_ALL), Reason.RING_MISALIGNED);
    }

    @Test
    void shouldIgnorePackedDescriptorNotYetAvailable() throws Exception {
        QueueConfig c = packedRing(SIZE, F_ALL);
        // AVAIL and USED both set for wrap 1: a used descriptor, not an available one.
        packedDesc(c, 0, data, 64, 0, USED);
        PackedQueue q = packed(c);
        byte[] before = ram.snapshot();
        assertEquals(null, q.pop());
        assertArrayEquals(before, ram.snapshot());
    }
}
