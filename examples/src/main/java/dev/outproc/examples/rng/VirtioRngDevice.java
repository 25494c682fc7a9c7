package dev.outproc.examples.rng;

import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.core.virtio.VirtioDeviceType;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtio.VirtioQueue;
import dev.outproc.core.virtqueue.DescriptorChain;
import dev.outproc.core.virtqueue.VirtqueueException;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.security.SecureRandom;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A virtio entropy device (virtio-rng, VIRTIO 1.2 §5.4): one request queue of device-writable buffers,
 * each filled with bytes from {@link SecureRandom}. No configuration space and no device features.
 * It is the guide's second worked example ({@code docs/vhost-user-guide.md}).
 */
// @start region="device"
public final class VirtioRngDevice implements VirtioDevice {
    /** The most bytes one request gets: the device may return fewer than asked (§5.4.6). */
    public static final int MAX_BYTES_PER_REQUEST = 64 * 1024;

    private final SecureRandom random = new SecureRandom();
    private final byte[] block = new byte[4096];                  // reused: the data path allocates nothing
    private final MemorySegment blockSegment = MemorySegment.ofArray(block);
    private final VirtioQueue.ChainHandler fill = this::fill;     // a field, not a lambda per call
    private final AtomicLong bytesServed = new AtomicLong();

    @Override
    public int deviceType() {
        return VirtioDeviceType.ENTROPY;
    }

    @Override
    public long features() {
        return VirtioFeature.maskOf(VirtioFeature.VERSION_1, VirtioFeature.EVENT_IDX, VirtioFeature.INDIRECT_DESC,
                VirtioFeature.RING_PACKED);
    }

    @Override
    public int queueCount() {
        return 1;                                                 // requestq
    }

    @Override
    public void processQueue(VirtioQueue queue) throws IOException {
        queue.drain(fill);                                        // pop, fill, complete, notify, repeat
    }

    /** Fills the chain's writable part (its readable part, which a driver should not send, is ignored). */
    private long fill(DescriptorChain chain) throws VirtqueueException {
        long wanted = Math.min(chain.totalWritable(), MAX_BYTES_PER_REQUEST);
        long written = 0;
        while (written < wanted) {
            int n = (int) Math.min(block.length, wanted - written);
            random.nextBytes(block);
            chain.writeWritable(written, blockSegment, 0, n);     // bounds-checked against the chain
            written += n;
        }
        bytesServed.addAndGet(written);
        return written;
    }

    /** {@return the bytes given to the guest since the device was made} */
    public long bytesServed() {
        return bytesServed.get();
    }
}
// @end
