package dev.outproc.benchmarks.virtqueue;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.virtqueue.DescriptorChain;
import dev.outproc.core.virtqueue.DeviceQueue;
import dev.outproc.core.virtqueue.DriverQueue;
import dev.outproc.core.virtqueue.GpaAllocator;
import dev.outproc.core.virtqueue.PackedDriverQueue;
import dev.outproc.core.virtqueue.PackedQueue;
import dev.outproc.core.virtqueue.QueueConfig;
import dev.outproc.core.virtqueue.SplitDriverQueue;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtqueue.SplitQueue;
import dev.outproc.core.virtqueue.VirtqueueException;

import java.util.List;

/**
 * One ring in memfd guest memory with a driver and a device, and the chain shape both benchmarks (and
 * the C comparison in {@code benchmarks/c/virtqueue_bench.c}) use:
 * <ul>
 *   <li>1 descriptor: one device-writable 512-byte buffer (a receive buffer);</li>
 *   <li>4 descriptors: a 16-byte readable header, two 512-byte readable data buffers, a 1-byte writable
 *       status (a block request).</li>
 * </ul>
 * The device reports the chain's writable length as written; buffer contents are not touched, so the
 * figures are the ring overhead.
 */
final class RingSetup implements AutoCloseable {
    static final int QUEUE_SIZE = 256;
    static final long BASE = 0x10_0000L;
    static final int DATA = 512;
    static final int HEADER = 16;

    final GuestRegion region;
    final GuestMemory memory;
    final DriverQueue driver;
    final DeviceQueue device;
    final int descriptors;
    final boolean indirect;
    final long dataBase;

    RingSetup(boolean packed, int descriptors, boolean indirect, boolean eventIdx) throws Exception {
        this.region = GuestRegion.allocate(BASE, 16L << 20, 0x7f00_0000_0000L);
        this.memory = GuestMemory.of(List.of(region));
        GpaAllocator allocator = new GpaAllocator(BASE, BASE + (16L << 20));
        long features = VirtioFeature.INDIRECT_DESC.mask() | (eventIdx ? VirtioFeature.EVENT_IDX.mask() : 0);
        this.driver = packed
                ? PackedDriverQueue.allocate("bench", memory, allocator, QUEUE_SIZE, features, 4)
                : SplitDriverQueue.allocate("bench", memory, allocator, QUEUE_SIZE, features, 4);
        this.device = packed ? new PackedQueue("bench") : new SplitQueue("bench");
        device.configure(driver.config(), memory);
        this.descriptors = descriptors;
        this.indirect = indirect;
        this.dataBase = allocator.allocate((long) QUEUE_SIZE * 2048, 4096);
        device.disableNotifications();
        driver.disableUsedNotifications();
    }

    /** Stages and posts one chain of the benchmark's shape; returns its id. */
    int postOne(int slot) {
        long at = dataBase + (long) slot * 2048;
        if (descriptors == 1) {
            driver.add(at, DATA, true);
        } else {
            driver.add(at, HEADER, false);
            driver.add(at + 64, DATA, false);
            driver.add(at + 64 + DATA, DATA, false);
            driver.add(at + 64 + 2 * DATA, 1, true);
        }
        return driver.post(indirect);
    }

    /** Pops {@code n} chains and completes them as one batch; returns the sum of ids (for the blackhole). */
    long serve(int n, DescriptorChain[] batch, long[] lengths) throws VirtqueueException {
        long sum = 0;
        for (int i = 0; i < n; i++) {
            DescriptorChain c = device.pop();
            batch[i] = c;
            lengths[i] = c.totalWritable();
            sum += c.id();
        }
        if (n == 1) {
            device.addUsed(batch[0], lengths[0]);
        } else {
            device.addUsedBatch(batch, lengths, n);
        }
        return sum;
    }

    @Override
    public void close() {
        region.close();
    }
}
