package dev.outproc.vfio.virtio;

import dev.outproc.core.event.EventLoop;
import dev.outproc.core.fd.NativeException;
import dev.outproc.core.memory.DirtyLog;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtio.VirtioStatus;
import dev.outproc.core.virtqueue.DeviceQueue;
import dev.outproc.core.virtqueue.PackedQueue;
import dev.outproc.core.virtqueue.QueueConfig;
import dev.outproc.core.virtqueue.SplitQueue;
import dev.outproc.core.virtqueue.VirtqueueException;
import dev.outproc.vfio.server.DeviceContext;

import java.io.IOException;

import static java.lang.System.Logger.Level.DEBUG;
import static java.lang.System.Logger.Level.WARNING;

/**
 * The life cycle of a {@link VirtioPciDevice}'s queues: started when the driver sets DRIVER_OK with them enabled (or
 * resumed where a migration stopped them), run on the device's worker thread when their doorbell rings, stopped
 * (the worker out of the device first) on a reset, a migration stop or the client's departure, and marked broken
 * with DEVICE_NEEDS_RESET when their rings fail (VIRTIO 1.2 §2.1.1). It also holds the client's DMA space the rings
 * live in.
 */
final class QueueLifecycle {
    private static final System.Logger LOG = System.getLogger(VirtioPciDevice.class.getName());
    /** The negotiated features the virtqueue layer reads. */
    private static final long QUEUE_FEATURES = VirtioFeature.maskOf(VirtioFeature.EVENT_IDX, VirtioFeature.INDIRECT_DESC,
            VirtioFeature.IN_ORDER, VirtioFeature.RING_PACKED);

    private final VirtioDevice device;
    private final int maxQueueSize;
    private final PciQueue[] queues;
    private final EventLoop worker;
    private final TransportRegisters registers;
    private final TransportInterrupts interrupts;
    private volatile DeviceContext context;

    QueueLifecycle(VirtioDevice device, int maxQueueSize, PciQueue[] queues, EventLoop worker, TransportRegisters registers,
                   TransportInterrupts interrupts) {
        this.device = device;
        this.maxQueueSize = maxQueueSize;
        this.queues = queues;
        this.worker = worker;
        this.registers = registers;
        this.interrupts = interrupts;
    }

    /** A client connected (its DMA space) or went ({@code null}). */
    void setContext(DeviceContext context) {
        this.context = context;
    }

    /** {@return the client's DMA memory now, empty without a client} */
    GuestMemory dmaMemory() {
        DeviceContext c = context;
        return c == null ? GuestMemory.empty() : c.dma().guestMemory();
    }

    /** Stops every queue, returns every virtio register to its reset value and resets the device. */
    void resetTransport() {
        stopAll();
        synchronized (registers) {
            registers.reset();
            for (PciQueue q : queues) {
                q.resetRegisters(maxQueueSize);
                q.broken = false;
                q.features = 0;
            }
        }
        device.reset();
    }

    /** Starts every enabled queue (register lock held, DRIVER_OK set). */
    void startEnabled() {
        for (PciQueue q : queues) {
            if (q.enabled) {
                start(q);
            }
        }
    }

    /** Stops every started queue, waiting until the worker is out of the device. */
    void stopAll() {
        if (!worker.isRunning()) {
            return;
        }
        worker.awaitOnLoop(() -> {
            for (PciQueue q : queues) {
                if (q.registration != null) {
                    q.registration.cancel();
                    q.registration = null;
                }
                if (q.started) {
                    q.started = false;
                    device.queueStopped(q);
                    q.stopped = q.queue.exportState(); // where a migration resumes it
                }
                q.queue = null;
                q.dirtyLog = null;
                q.memory = GuestMemory.empty();
            }
        });
    }

    /** Starts an enabled queue after DRIVER_OK (register lock held). */
    void start(PciQueue q) {
        DeviceContext c = context;
        if (c == null || q.started) {
            return;
        }
        long features = registers.driverFeatures;
        GuestMemory memory = c.dma().guestMemory();
        QueueConfig config = new QueueConfig("virtio-pci queue " + q.index(), q.size, q.descAddr, q.driverAddr, q.deviceAddr,
                features & QUEUE_FEATURES);
        DeviceQueue ring = TransportRegisters.packed(features) ? new PackedQueue(config.name()) : new SplitQueue(config.name());
        try {
            if (q.stopped != null) {
                ring.importState(config, q.stopped, memory);
            } else {
                ring.configure(config, memory);
            }
        } catch (VirtqueueException e) {
            needsReset("queue " + q.index() + " cannot start: " + e.getMessage());
            return;
        }
        EventLoop.Registration registration;
        try {
            registration = worker.add(q.kick.owner(), events -> {
                q.kick.drain();
                run(q);
            });
        } catch (NativeException e) {
            needsReset("queue " + q.index() + " cannot start: " + e.getMessage());
            return;
        }
        worker.awaitOnLoop(() -> {
            q.registration = registration;
            q.queue = ring;
            q.memory = memory;
            q.features = features;
            q.broken = false;
            q.started = true;
            device.queueStarted(q);
            run(q); // buffers made available before the start are not lost
        });
        LOG.log(DEBUG, "queue {0} started: {1} ring of {2}", q.index(), TransportRegisters.packed(features) ? "packed" : "split", q.size);
    }

    /** Runs the device on a queue; on the worker. */
    private void run(PciQueue q) {
        if (!q.started || q.broken) {
            return;
        }
        DeviceContext c = context;
        if (c == null) {
            return;
        }
        GuestMemory current = c.dma().guestMemory();
        try {
            if (current != q.memory) {
                // The client mapped or unmapped DMA windows: the ring picks up the new snapshot between batches.
                q.queue.setMemory(current);
                q.memory = current;
            }
            DirtyLog log = c.dma().deviceWriteLog();
            if (log != q.dirtyLog) {
                // DMA logging started or stopped: the ring logs what it writes from this batch on (the used ring
                // of a split ring, the descriptor ring of a packed one, and the buffers the device fills).
                q.queue.setDirtyLog(log, TransportRegisters.packed(q.features) ? q.queue.config().descAddr() : q.queue.config().deviceAddr());
                q.dirtyLog = log;
            }
            device.processQueue(q);
        } catch (IOException | RuntimeException e) {
            q.broken = true;
            needsReset("queue " + q.index() + " is broken: " + e.getMessage());
        }
    }

    /** Sets DEVICE_NEEDS_RESET and tells the driver with a configuration interrupt (VIRTIO 1.2 §2.1.1). */
    private void needsReset(String why) {
        LOG.log(WARNING, why + "; device needs reset");
        int s = registers.status;
        registers.status = s | VirtioStatus.DEVICE_NEEDS_RESET;
        if ((s & (VirtioStatus.FEATURES_OK | VirtioStatus.DRIVER_OK)) != 0) {
            interrupts.config();
        }
    }
}
