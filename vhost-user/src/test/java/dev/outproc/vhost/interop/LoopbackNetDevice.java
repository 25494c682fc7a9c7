package dev.outproc.vhost.interop;

import dev.outproc.core.memory.Layouts;
import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.core.virtio.VirtioDeviceType;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtio.VirtioQueue;
import dev.outproc.core.virtqueue.DescriptorChain;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The smallest virtio-net device that a Linux guest can talk to: every frame the guest transmits comes
 * back on its receive queue (VIRTIO 1.x §5.1, with only VERSION_1: a 12-byte {@code virtio_net_hdr}
 * before each frame, {@code num_buffers} = 1 on receive). A frame with no receive buffer waiting is
 * dropped and counted. Both queues must share one worker (the back-end's Options with one thread).
 */
final class LoopbackNetDevice implements VirtioDevice {
    private static final int RX = 0;
    private static final int TX = 1;
    private static final int HEADER_BYTES = 12;
    private static final long NUM_BUFFERS_OFFSET = 10;
    private static final int MAX_FRAME = 65_550;

    final AtomicLong looped = new AtomicLong();
    final AtomicLong dropped = new AtomicLong();
    private final MemorySegment frame = Arena.ofAuto().allocate(MAX_FRAME + HEADER_BYTES);
    private VirtioQueue rx;

    @Override
    public int deviceType() {
        return VirtioDeviceType.NET;
    }

    @Override
    public long features() {
        return VirtioFeature.VERSION_1.mask();
    }

    @Override
    public int queueCount() {
        return 2;
    }

    @Override
    public int maxQueueSize() {
        return 256;
    }

    @Override
    public void queueStarted(VirtioQueue queue) {
        if (queue.index() == RX) {
            rx = queue;
        }
    }

    @Override
    public void processQueue(VirtioQueue queue) throws IOException {
        if (queue.index() != TX) {
            return; // receive buffers wait for transmitted frames
        }
        DescriptorChain sent;
        while ((sent = queue.pop()) != null) {
            long length = Math.min(sent.totalReadable(), frame.byteSize());
            sent.readReadable(0, frame, 0, length);
            queue.complete(sent, 0);
            VirtioQueue receive = rx;
            DescriptorChain buffer = receive == null || !receive.isEnabled() ? null : receive.pop();
            if (buffer == null || buffer.totalWritable() < length || length < HEADER_BYTES) {
                if (buffer != null) {
                    receive.complete(buffer, 0);
                }
                dropped.incrementAndGet();
                continue;
            }
            frame.set(Layouts.LE_U16, NUM_BUFFERS_OFFSET, (short) 1);
            buffer.writeWritable(0, frame, 0, length);
            receive.complete(buffer, length);
            looped.incrementAndGet();
        }
        queue.notifyGuest();
        if (rx != null) {
            rx.notifyGuest();
        }
    }
}
