package dev.outproc.core.virtqueue;

import dev.outproc.core.memory.Layouts;
import dev.outproc.core.virtio.VirtioFeature;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * VIRTIO_F_IN_ORDER on the driver side: descriptors are used in ring order, and a device may answer a
 * batch with one used entry carrying the last chain's id (as DPDK's in-order paths do).
 */
class DriverQueueInOrderTest {
    private static final long FEATURES = VirtioFeature.IN_ORDER.mask() | VirtioFeature.EVENT_IDX.mask();

    private static List<Long> reapAll(DriverQueue driver) throws Exception {
        List<Long> out = new ArrayList<>();
        long used;
        while ((used = driver.pollUsed()) != DriverQueue.NONE) {
            out.add(used);
        }
        return out;
    }

    private static long entry(int id, long length) {
        return ((long) id << 32) | length;
    }

    @Test
    void shouldExpandOneSplitUsedElementToTheWholeBatch() throws Exception {
        try (GuestRam ram = new GuestRam(1 << 20)) {
            SplitDriverQueue driver = SplitDriverQueue.allocate("in-order", ram.memory, ram.allocator, 8, FEATURES, 0);
            long data = ram.allocator.allocate(4096, 64);
            int[] ids = new int[3];
            for (int i = 0; i < 3; i++) {
                driver.add(data + 64L * i, 16, false);
                driver.add(data + 64L * i + 32, 16, true);
                ids[i] = driver.post(false);
            }
            driver.publish();
            // Ring order: chains of two descriptors start at 0, 2, 4.
            assertEquals(List.of(0, 2, 4), List.of(ids[0], ids[1], ids[2]));
            // The device answers with a single used element for the batch: the last id, length 7.
            QueueConfig c = driver.config();
            MemorySegment used = ram.at(c.deviceAddr(), 6 + 8L * 8);
            used.set(Layouts.LE_U64, 4, ids[2] | 7L << 32);   // {le32 id; le32 len}
            used.set(Layouts.LE_U16_ALIGNED, 2, (short) 1);
            assertEquals(List.of(entry(ids[0], 0), entry(ids[1], 0), entry(ids[2], 7)), reapAll(driver));
            assertEquals(8, driver.freeDescriptors());
            // The next chain continues in ring order at descriptor 6, wrapping to 0.
            driver.add(data, 16, false);
            driver.add(data + 32, 16, false);
            driver.add(data + 48, 16, true);
            assertEquals(6, driver.post(false));
            MemorySegment desc = ram.at(c.descAddr(), 16L * 8);
            long word = desc.get(Layouts.LE_U64, 16L * 7 + 8);
            assertEquals(0, (int) (word >>> 48), "descriptor 7 chains to 0 (ring order)");
        }
    }

    @Test
    void shouldExpandOnePackedUsedDescriptorToTheWholeBatch() throws Exception {
        try (GuestRam ram = new GuestRam(1 << 20)) {
            PackedDriverQueue driver = PackedDriverQueue.allocate("in-order", ram.memory, ram.allocator, 8, FEATURES, 0);
            long data = ram.allocator.allocate(4096, 64);
            int[] ids = new int[3];
            for (int i = 0; i < 3; i++) {
                driver.add(data + 64L * i, 16, false);
                driver.add(data + 64L * i + 32, 16, true);
                ids[i] = driver.post(false);
            }
            driver.publish();
            // The device writes one used descriptor at slot 0 with the last id and skips all 6 slots.
            MemorySegment desc = ram.at(driver.config().descAddr(), 16L * 8);
            desc.set(Layouts.LE_U32, 8, 9);
            desc.set(Layouts.LE_U16, 12, (short) ids[2]);
            desc.set(Layouts.LE_U16, 14, (short) (Rings.F_AVAIL | Rings.F_USED | Rings.F_WRITE));
            assertEquals(List.of(entry(ids[0], 0), entry(ids[1], 0), entry(ids[2], 9)), reapAll(driver));
            assertEquals(8, driver.freeSlots());
            assertEquals(0, driver.inFlightCount());
        }
    }
}
