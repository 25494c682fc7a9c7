package dev.outproc.core.virtqueue;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link RingView} reads what the driver side wrote and the device side completed, as the queues see it. */
class RingViewTest {
    @Test
    void shouldSeePackedChainsAvailableThenUsed() throws Exception {
        try (GuestRam ram = new GuestRam(1 << 20)) {
            Rig rig = Rig.create(ram, true, 8, 0, 0);
            QueueConfig c = rig.driver().config();
            MemorySegment descRing = ram.at(c.descAddr(), 16L * c.size());
            long buffer = ram.allocator.allocate(256, 8);
            assertFalse(RingView.packedIsAvailable(descRing, 0, true), "nothing posted yet");

            rig.driver().add(buffer, 16, false);
            rig.driver().add(buffer + 64, 64, true);
            int id = rig.driver().post(false);
            rig.driver().publish();

            int first = RingView.packedFlags(descRing, 0);
            assertTrue(RingView.packedIsAvailable(first, true));
            assertFalse(RingView.packedIsAvailable(first, false), "the wrap counter matters");
            assertTrue((first & RingView.PACKED_F_NEXT) != 0, "a two-buffer chain continues");
            int last = RingView.packedFlags(descRing, 1);
            assertTrue(RingView.packedIsAvailable(last, true));
            assertEquals(0, last & RingView.PACKED_F_NEXT);
            assertTrue((last & RingView.PACKED_F_WRITE) != 0);
            assertEquals(id, RingView.packedBufferId(descRing, 1), "the last descriptor carries the buffer id");

            DescriptorChain chain = rig.device().pop();
            rig.device().addUsed(chain, 0);
            assertTrue(RingView.packedIsUsed(RingView.packedFlags(descRing, 0), true));
            assertFalse(RingView.packedIsAvailable(descRing, 0, true));
        }
    }

    @Test
    void shouldReadTheSplitUsedIndexLittleEndian() throws Exception {
        try (GuestRam ram = new GuestRam(1 << 20)) {
            Rig rig = Rig.create(ram, false, 8, 0, 0);
            QueueConfig c = rig.driver().config();
            MemorySegment usedRing = ram.at(c.deviceAddr(), 4 + 8L * c.size());
            long buffer = ram.allocator.allocate(64, 8);
            assertEquals(0, RingView.splitUsedIndex(usedRing));
            for (int i = 1; i <= 3; i++) {
                rig.driver().add(buffer, 64, true);
                rig.driver().post(false);
                rig.driver().publish();
                rig.device().addUsed(rig.device().pop(), 8);
                assertEquals(i, RingView.splitUsedIndex(usedRing));
                assertEquals(i, usedRing.get(dev.outproc.core.memory.Layouts.LE_U16, 2));
            }
        }
    }

    @Test
    void shouldRefuseSlotsOutsideTheRing() throws Exception {
        try (GuestRam ram = new GuestRam(1 << 20)) {
            MemorySegment descRing = ram.at(GuestRam.BASE, 16 * 4);
            assertThrows(IndexOutOfBoundsException.class, () -> RingView.packedFlags(descRing, 4));
            assertThrows(IndexOutOfBoundsException.class, () -> RingView.packedBufferId(descRing, -1));
            assertThrows(IndexOutOfBoundsException.class, () -> RingView.splitUsedIndex(descRing.asSlice(0, 3)));
        }
    }
}
