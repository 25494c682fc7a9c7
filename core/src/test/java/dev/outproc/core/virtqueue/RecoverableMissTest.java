package dev.outproc.core.virtqueue;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.ValueLayout;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** With recoverable misses (a device behind an IOMMU), an unmapped buffer is retried, not fatal. */
class RecoverableMissTest {
    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void missShouldNameTheAddressAndTheChainShouldPopOnceMapped(boolean packed) throws Exception {
        try (GuestRegion rings = GuestRegion.allocate(0x10_0000, 1 << 20, 0x7f00_0000_0000L);
             GuestRegion buffers = GuestRegion.allocate(0x4000_0000L, 1 << 16, 0x7f00_1000_0000L)) {
            GuestMemory all = GuestMemory.of(List.of(rings, buffers));
            GuestMemory ringsOnly = GuestMemory.of(List.of(rings));
            GpaAllocator allocator = new GpaAllocator(0x10_0000, 0x10_0000 + (1 << 20));
            DriverQueue driver = packed
                    ? PackedDriverQueue.allocate("miss", all, allocator, 16, 0, 0)
                    : SplitDriverQueue.allocate("miss", all, allocator, 16, 0, 0);
            DeviceQueue device = packed ? new PackedQueue("miss") : new SplitQueue("miss");
            device.configure(driver.config(), ringsOnly);
            device.setMissesRecoverable(true);
            long bufferGpa = 0x4000_0100L;
            buffers.segment().set(ValueLayout.JAVA_BYTE, 0x100, (byte) 42);
            driver.add(bufferGpa, 16, false);
            int id = driver.post(false);
            driver.publish();

            VirtqueueException miss = assertThrows(VirtqueueException.class, device::pop);
            assertEquals(VirtqueueException.Reason.BUFFER_OUTSIDE_MEMORY, miss.reason());
            assertEquals(bufferGpa, miss.address());
            assertFalse(device.isBroken(), "a recoverable miss leaves the queue usable");
            assertThrows(VirtqueueException.class, device::pop, "still unmapped: the same miss again");

            device.setMemory(all);
            DescriptorChain chain = device.pop();
            assertNotNull(chain, "the same chain once the mapping is there");
            assertEquals(id, chain.id());
            assertEquals(bufferGpa, chain.address(0));
            byte[] b = new byte[1];
            chain.readReadable(0, java.lang.foreign.MemorySegment.ofArray(b), 0, 1);
            assertEquals(42, b[0]);
            device.addUsed(chain, 0);
            long used = driver.pollUsed();
            assertEquals(id, DriverQueue.usedId(used));
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void withoutRecoverableMissesTheQueueBreaks(boolean packed) throws Exception {
        try (GuestRegion rings = GuestRegion.allocate(0x10_0000, 1 << 20, 0x7f00_0000_0000L)) {
            GuestMemory memory = GuestMemory.of(List.of(rings));
            GpaAllocator allocator = new GpaAllocator(0x10_0000, 0x10_0000 + (1 << 20));
            DriverQueue driver = packed
                    ? PackedDriverQueue.allocate("fatal", memory, allocator, 16, 0, 0)
                    : SplitDriverQueue.allocate("fatal", memory, allocator, 16, 0, 0);
            DeviceQueue device = packed ? new PackedQueue("fatal") : new SplitQueue("fatal");
            device.configure(driver.config(), memory);
            driver.add(0x9000_0000L, 16, false);
            driver.post(false);
            driver.publish();
            VirtqueueException e = assertThrows(VirtqueueException.class, device::pop);
            assertEquals(0x9000_0000L, e.address());
            assertTrue(device.isBroken());
        }
    }
}
