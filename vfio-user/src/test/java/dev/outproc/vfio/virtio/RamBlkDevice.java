package dev.outproc.vfio.virtio;

import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.core.virtio.VirtioDeviceType;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtio.VirtioQueue;
import dev.outproc.core.virtio.blk.VirtioBlk;
import dev.outproc.core.virtqueue.DescriptorChain;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicInteger;

import static dev.outproc.core.memory.Layouts.LE_U32;
import static dev.outproc.core.memory.Layouts.LE_U64;

/**
 * A minimal virtio-blk device for the transport's tests: IN and OUT on a byte array, everything else
 * UNSUPP; counts what the transport calls. (The full block logic lives in the examples; the transport
 * must not care which device it serves.)
 */
final class RamBlkDevice implements VirtioDevice {
    final byte[] disk;
    final AtomicInteger resets = new AtomicInteger();
    final AtomicInteger started = new AtomicInteger();
    final AtomicInteger stopped = new AtomicInteger();
    final AtomicInteger requests = new AtomicInteger();
    volatile long negotiated;
    private final MemorySegment header = MemorySegment.ofArray(new byte[VirtioBlk.HEADER_SIZE]);
    private final VirtioQueue.ChainHandler handler = this::handle;

    RamBlkDevice(int sectors) {
        disk = new byte[sectors * VirtioBlk.SECTOR_SIZE];
    }

    @Override
    public int deviceType() {
        return VirtioDeviceType.BLOCK;
    }

    @Override
    public long features() {
        // bit 30 is vhost-user's F_PROTOCOL_FEATURES: the PCI transport must not pass it on.
        return VirtioFeature.maskOf(VirtioFeature.VERSION_1, VirtioFeature.EVENT_IDX, VirtioFeature.INDIRECT_DESC, VirtioFeature.RING_PACKED)
                | (1L << VirtioBlk.F_FLUSH) | (1L << 30);
    }

    @Override
    public int queueCount() {
        return 1;
    }

    @Override
    public int maxQueueSize() {
        return 64;
    }

    @Override
    public int configSize() {
        return 8;
    }

    @Override
    public void readConfig(int offset, MemorySegment destination) {
        MemorySegment config = MemorySegment.ofArray(new byte[8]);
        config.set(LE_U64, 0, disk.length / VirtioBlk.SECTOR_SIZE);
        MemorySegment.copy(config, offset, destination, 0, destination.byteSize());
    }

    @Override
    public void processQueue(VirtioQueue queue) throws IOException {
        queue.drain(handler);
    }

    private long handle(DescriptorChain chain) throws IOException {
        requests.incrementAndGet();
        chain.readReadable(0, header, 0, VirtioBlk.HEADER_SIZE);
        int type = header.get(LE_U32, VirtioBlk.HEADER_TYPE_OFFSET);
        long sector = header.get(LE_U64, VirtioBlk.HEADER_SECTOR_OFFSET);
        long readable = chain.totalReadable();
        long writable = chain.totalWritable();
        int status = VirtioBlk.S_OK;
        long written = 1;
        MemorySegment image = MemorySegment.ofArray(disk);
        if (type == VirtioBlk.T_OUT) {
            long n = readable - VirtioBlk.HEADER_SIZE;
            chain.readReadable(VirtioBlk.HEADER_SIZE, image, sector * VirtioBlk.SECTOR_SIZE, n);
        } else if (type == VirtioBlk.T_IN) {
            long n = writable - 1;
            chain.writeWritable(0, image, sector * VirtioBlk.SECTOR_SIZE, n);
            written = n + 1;
        } else {
            status = VirtioBlk.S_UNSUPP;
        }
        MemorySegment s = MemorySegment.ofArray(new byte[] {(byte) status});
        chain.writeWritable(writable - 1, s, 0, 1);
        return written;
    }

    @Override
    public void queueStarted(VirtioQueue queue) {
        started.incrementAndGet();
    }

    @Override
    public void queueStopped(VirtioQueue queue) {
        stopped.incrementAndGet();
    }

    @Override
    public void featuresNegotiated(long features) {
        negotiated = features;
    }

    @Override
    public void reset() {
        resets.incrementAndGet();
    }
}
