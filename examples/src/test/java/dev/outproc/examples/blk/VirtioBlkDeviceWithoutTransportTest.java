package dev.outproc.examples.blk;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.virtio.VirtioQueue;
import dev.outproc.core.virtio.blk.BlkRequestDriver;
import dev.outproc.core.virtio.blk.VirtioBlk;
import dev.outproc.core.virtqueue.DescriptorChain;
import dev.outproc.core.virtqueue.DeviceQueue;
import dev.outproc.core.virtqueue.DriverQueue;
import dev.outproc.core.virtqueue.GpaAllocator;
import dev.outproc.core.virtqueue.SplitDriverQueue;
import dev.outproc.core.virtqueue.SplitQueue;
import dev.outproc.core.virtqueue.VirtqueueException;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The block device and core's block driver meet with no transport between them: a {@link VirtioQueue}
 * made of core's device-side queue, called from the driver's doorbell. This is the seam a virtio-pci
 * transport (vfio-user) plugs into; vhost-user is not involved.
 */
class VirtioBlkDeviceWithoutTransportTest {
    private static final long BASE = 0x10_0000L;
    private static final long BYTES = 4L << 20;

    /** The smallest transport: one started, enabled queue whose notifications go nowhere. */
    private record DirectQueue(DeviceQueue queue, GuestMemory memory) implements VirtioQueue {
        @Override
        public int index() {
            return 0;
        }

        @Override
        public boolean isEnabled() {
            return true;
        }

        @Override
        public boolean isStarted() {
            return true;
        }

        @Override
        public long negotiatedFeatures() {
            return 0;
        }

        @Override
        public DescriptorChain pop() throws VirtqueueException {
            return queue.pop();
        }

        @Override
        public void complete(DescriptorChain chain, long writtenBytes) throws VirtqueueException {
            queue.addUsed(chain, writtenBytes);
        }

        @Override
        public void notifyGuest() {
        }

        @Override
        public void signalGuest() {
        }
    }

    @Test
    void blockDeviceShouldServeCoresDriverDirectly() throws Exception {
        long seed = new SplittableRandom().nextLong();
        try (GuestRegion region = GuestRegion.allocate(BASE, BYTES, 0x7f00_0000_0000L);
             MemoryBlockStore store = new MemoryBlockStore(1 << 20, false)) {
            GuestMemory memory = GuestMemory.of(List.of(region));
            GpaAllocator allocator = new GpaAllocator(BASE, BASE + BYTES);
            DriverQueue driver = SplitDriverQueue.allocate("blk", memory, allocator, 64, 0, 0);
            SplitQueue deviceSide = new SplitQueue("blk");
            deviceSide.configure(driver.config(), memory);
            VirtioBlkDevice device = new VirtioBlkDevice(store, 1, 64, "no-transport");
            DirectQueue queue = new DirectQueue(deviceSide, memory);
            BlkRequestDriver blk = new BlkRequestDriver(memory, allocator, driver, new BlkRequestDriver.Doorbell() {
                @Override
                public void publishAndKick() throws IOException {
                    driver.publish();
                    device.processQueue(queue);
                }

                @Override
                public void awaitNotification(long timeoutMillis) {
                }
            }, 1, 8192, 1_000);

            byte[] data = new byte[8192];
            new SplittableRandom(seed).nextBytes(data);
            assertEquals(VirtioBlk.S_OK, blk.write(16, data), "seed=" + seed);
            byte[] back = new byte[8192];
            assertEquals(VirtioBlk.S_OK, blk.read(16, back), "seed=" + seed);
            assertArrayEquals(data, back, "seed=" + seed);
            assertEquals("no-transport", blk.getId());
            assertEquals(VirtioBlk.S_IOERR, blk.read((1 << 20) / 512, new byte[512]), "past the end");
            assertEquals(1, device.writes.get());
        }
    }
}
