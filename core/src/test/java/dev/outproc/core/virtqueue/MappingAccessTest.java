package dev.outproc.core.virtqueue;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A device queue over memory whose regions carry access permissions (views of IOTLB entries): a buffer or
 * ring area the device would read in a write-only region, or write in a read-only one, is refused as an
 * address outside memory would be, and never as a recoverable miss (the address is mapped; asking the IOTLB
 * again would not change it).
 */
class MappingAccessTest {
    private static final long RINGS = 0x10_0000;
    private static final long READ_WRITE = 0x4000_0000L;
    private static final long WRITE_ONLY = 0x5000_0000L;
    private static final long READ_ONLY = 0x6000_0000L;

    private record Setup(GuestRegion ram, GuestMemory memory, GuestMemory driverView) implements AutoCloseable {
        @Override
        public void close() {
            ram.close();
        }
    }

    /** One backing region, shown as four views: rings (RW), and buffer areas RW, WO and RO. */
    private static Setup setup(boolean ringsReadable, boolean ringsWritable) throws Exception {
        GuestRegion ram = GuestRegion.allocate(0, 4 << 20, 0x7f00_0000_0000L);
        GuestMemory memory = GuestMemory.of(List.of(
                GuestRegion.view(RINGS, 1 << 20, ram, 0, ringsReadable, ringsWritable),
                GuestRegion.view(READ_WRITE, 1 << 20, ram, 1 << 20, true, true),
                GuestRegion.view(WRITE_ONLY, 1 << 20, ram, 2 << 20, false, true),
                GuestRegion.view(READ_ONLY, 1 << 20, ram, 3 << 20, true, false)));
        GuestMemory driverView = GuestMemory.of(List.of(
                GuestRegion.view(RINGS, 1 << 20, ram, 0, true),
                GuestRegion.view(READ_WRITE, 1 << 20, ram, 1 << 20, true),
                GuestRegion.view(WRITE_ONLY, 1 << 20, ram, 2 << 20, true),
                GuestRegion.view(READ_ONLY, 1 << 20, ram, 3 << 20, true)));
        return new Setup(ram, memory, driverView);
    }

    private static DriverQueue driver(boolean packed, GuestMemory view) throws Exception {
        GpaAllocator allocator = new GpaAllocator(RINGS, RINGS + (1 << 20));
        return packed ? PackedDriverQueue.allocate("access", view, allocator, 16, QueueConfig.F_INDIRECT_DESC, 0)
                : SplitDriverQueue.allocate("access", view, allocator, 16, QueueConfig.F_INDIRECT_DESC, 0);
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void aReadableBufferInAWriteOnlyRegionShouldBreakTheQueue(boolean packed) throws Exception {
        try (Setup s = setup(true, true)) {
            DriverQueue driver = driver(packed, s.driverView());
            DeviceQueue device = packed ? new PackedQueue("access") : new SplitQueue("access");
            device.configure(driver.config(), s.memory());
            device.setMissesRecoverable(true); // as behind an IOMMU: still not a miss

            // Readable from RW, writable into WO: what a WO entry is for.
            driver.add(READ_WRITE, 16, false);
            driver.add(WRITE_ONLY, 16, true);
            driver.post(false);
            driver.publish();
            DescriptorChain ok = device.pop();
            assertNotNull(ok);
            ok.writeWritable(0, MemorySegment.ofArray(new byte[] {7}), 0, 1);
            device.addUsed(ok, 1);
            assertEquals(7, s.ram().segment().get(ValueLayout.JAVA_BYTE, 2 << 20));

            driver.add(WRITE_ONLY + 64, 16, false);
            driver.post(false);
            driver.publish();
            VirtqueueException e = assertThrows(VirtqueueException.class, device::pop);
            assertEquals(VirtqueueException.Reason.BUFFER_OUTSIDE_MEMORY, e.reason());
            assertTrue(e.getMessage().contains("device-readable buffer in a write-only mapping"), e.getMessage());
            assertTrue(device.isBroken(), "broken, not a recoverable miss");
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void aWritableBufferInAReadOnlyRegionShouldBreakTheQueue(boolean packed) throws Exception {
        try (Setup s = setup(true, true)) {
            DriverQueue driver = driver(packed, s.driverView());
            DeviceQueue device = packed ? new PackedQueue("access") : new SplitQueue("access");
            device.configure(driver.config(), s.memory());
            driver.add(READ_ONLY, 16, false);
            driver.add(READ_ONLY + 64, 16, true);
            driver.post(false);
            driver.publish();
            VirtqueueException e = assertThrows(VirtqueueException.class, device::pop);
            assertTrue(e.getMessage().contains("device-writable buffer in a read-only mapping"), e.getMessage());
            assertTrue(device.isBroken());
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void anIndirectTableInAWriteOnlyRegionShouldBreakTheQueue(boolean packed) throws Exception {
        try (Setup s = setup(true, true)) {
            QueueConfig c = driver(packed, s.driverView()).config();
            // The driver writes its indirect tables into the write-only region.
            DriverQueue driver = packed ? new PackedDriverQueue(c, s.driverView(), WRITE_ONLY + 4096, 4)
                    : new SplitDriverQueue(c, s.driverView(), WRITE_ONLY + 4096, 4);
            DeviceQueue device = packed ? new PackedQueue("access") : new SplitQueue("access");
            device.configure(c, s.memory());
            driver.add(READ_WRITE, 16, false);
            driver.post(true);
            driver.publish();
            VirtqueueException e = assertThrows(VirtqueueException.class, device::pop);
            assertTrue(e.getMessage().contains("indirect table") && e.getMessage().contains("write-only"), e.getMessage());
            assertTrue(device.isBroken());
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void ringsShouldNeedTheAccessTheDeviceMakes(boolean packed) throws Exception {
        try (Setup writeOnly = setup(false, true); Setup readOnly = setup(true, false)) {
            DeviceQueue device = packed ? new PackedQueue("access") : new SplitQueue("access");
            DriverQueue d1 = driver(packed, writeOnly.driverView());
            VirtqueueException read = assertThrows(VirtqueueException.class, () -> device.configure(d1.config(), writeOnly.memory()));
            assertEquals(VirtqueueException.Reason.RING_OUTSIDE_MEMORY, read.reason());
            assertTrue(read.getMessage().contains("write-only"), read.getMessage());
            DriverQueue d2 = driver(packed, readOnly.driverView());
            VirtqueueException write = assertThrows(VirtqueueException.class, () -> device.configure(d2.config(), readOnly.memory()));
            assertEquals(VirtqueueException.Reason.RING_OUTSIDE_MEMORY, write.reason());
            assertTrue(write.getMessage().contains("read-only"), write.getMessage());
        }
    }
}
