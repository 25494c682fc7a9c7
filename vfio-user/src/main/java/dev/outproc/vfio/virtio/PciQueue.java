package dev.outproc.vfio.virtio;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.event.EventLoop;
import dev.outproc.core.memory.DirtyLog;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.virtio.VirtioQueue;
import dev.outproc.core.virtqueue.DescriptorChain;
import dev.outproc.core.virtqueue.DeviceQueue;
import dev.outproc.core.virtqueue.QueueState;
import dev.outproc.core.virtqueue.VirtqueueException;

import java.io.IOException;

/**
 * One virtqueue of a {@link VirtioPciDevice}: the registers the driver programs through the common
 * configuration (guarded by the device's register lock, written on the connection thread) and, once the
 * driver set DRIVER_OK with the queue enabled, the running device-side ring that the device's worker
 * hands to {@link dev.outproc.core.virtio.VirtioDevice#processQueue}.
 *
 * <p>{@link #pop()}, {@link #complete}, {@link #notifyGuest()} allocate nothing.
 */
final class PciQueue implements VirtioQueue {
    private final VirtioPciDevice owner;
    private final int index;
    /** Signalled by a doorbell write to this queue's notification address; the worker waits on it. */
    final EventFd kick;

    // Registers (register lock).
    int size;
    long descAddr;
    long driverAddr;
    long deviceAddr;
    volatile int msixVector = CommonConfig.NO_VECTOR;
    volatile boolean enabled;

    // Running state: written on the worker (or before the queue is handed to it).
    volatile DeviceQueue queue;
    volatile GuestMemory memory = GuestMemory.empty();
    volatile boolean started;
    volatile boolean broken;
    volatile long features;
    EventLoop.Registration registration;
    /** The DMA logging session the ring logs into (worker only). */
    DirtyLog dirtyLog;
    /** Where the ring stopped (a migration stop, or a loaded state): the next start resumes there (register lock). */
    volatile QueueState stopped;

    PciQueue(VirtioPciDevice owner, int index, int maxSize) throws IOException {
        this.owner = owner;
        this.index = index;
        this.kick = EventFd.create();
        this.size = maxSize;
    }

    /**
     * {@return whether rings of this size at these addresses are aligned (VIRTIO 1.2 §2.7, §2.8) and lie in memory}
     *
     * @param packed packed rings (else split)
     * @param size the queue size
     * @param descAddr the descriptor area
     * @param driverAddr the driver area
     * @param deviceAddr the device area
     * @param memory the client's DMA memory
     */
    static boolean ringsFit(boolean packed, int size, long descAddr, long driverAddr, long deviceAddr, GuestMemory memory) {
        long descBytes = 16L * size;
        long driverBytes = packed ? 4 : 6 + 2L * size;
        long deviceBytes = packed ? 4 : 6 + 8L * size;
        long driverAlign = packed ? 4 : 2;
        if ((descAddr & 15) != 0 || (driverAddr & (driverAlign - 1)) != 0 || (deviceAddr & 3) != 0) {
            return false;
        }
        return memory.contains(descAddr, descBytes) && memory.contains(driverAddr, driverBytes)
                && memory.contains(deviceAddr, deviceBytes);
    }

    /** Returns the registers to their reset values (register lock held, queue stopped). */
    void resetRegisters(int maxSize) {
        size = maxSize;
        descAddr = 0;
        driverAddr = 0;
        deviceAddr = 0;
        msixVector = CommonConfig.NO_VECTOR;
        enabled = false;
        stopped = null;
    }

    @Override
    public int index() {
        return index;
    }

    @Override
    public DeviceQueue queue() {
        return queue;
    }

    @Override
    public GuestMemory memory() {
        return memory;
    }

    @Override
    public boolean isEnabled() {
        return enabled;
    }

    @Override
    public boolean isStarted() {
        return started;
    }

    @Override
    public long negotiatedFeatures() {
        return features;
    }

    @Override
    public DescriptorChain pop() throws VirtqueueException {
        DeviceQueue q = queue;
        if (!started || broken || q == null) {
            return null;
        }
        return q.pop();
    }

    @Override
    public void complete(DescriptorChain chain, long writtenBytes) throws VirtqueueException {
        DeviceQueue q = queue;
        if (q == null) {
            throw new IllegalStateException("queue " + index + " is not started");
        }
        q.addUsed(chain, writtenBytes);
    }

    @Override
    public void notifyGuest() throws IOException {
        DeviceQueue q = queue;
        if (started && q != null && q.needsNotification()) {
            owner.interruptQueue(this);
        }
    }

    @Override
    public void signalGuest() throws IOException {
        if (started) {
            owner.interruptQueue(this);
        }
    }

    @Override
    public String toString() {
        return "virtio-pci queue " + index + (started ? ", started" : "") + (enabled ? ", enabled" : "") + (broken ? ", broken" : "");
    }
}
