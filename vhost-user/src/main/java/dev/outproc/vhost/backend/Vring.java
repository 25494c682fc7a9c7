package dev.outproc.vhost.backend;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.event.EventLoop;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.virtqueue.DescriptorChain;
import dev.outproc.core.virtqueue.DeviceQueue;
import dev.outproc.core.virtqueue.VirtqueueException;
import dev.outproc.core.virtio.VirtioQueue;

import java.io.IOException;

/**
 * One ring of a vhost-user back-end: the {@link VirtioQueue} the device sees (the device-side virtqueue,
 * the guest memory it reads, and the guest notification). Handed to {@link VhostUserDevice#processQueue}
 * on the ring's worker thread; use it only there.
 *
 * <p>{@link #pop()}, {@link #complete} and {@link #notifyGuest()} allocate nothing in steady state.
 */
public final class Vring implements VirtioQueue {
    private final int index;
    private final VhostUserBackend backend;
    final EventLoop worker;

    // Written on the connection thread while the worker is quiesced; read on the worker.
    DeviceQueue queue;
    GuestMemory memory = GuestMemory.empty();
    int size;
    long descUserAddr;
    long availUserAddr;
    long usedUserAddr;
    long logGuestAddr;
    boolean logUsed;
    boolean addressesSet;
    int baseAvail;
    int baseUsed;
    boolean baseAvailWrap = true;
    boolean baseUsedWrap = true;
    EventFd kick;
    EventFd call;
    EventFd err;
    boolean pollKick;
    boolean inbandCall;
    EventLoop.Registration kickRegistration;
    Runnable poller;
    volatile boolean started;
    volatile boolean enabled;
    volatile boolean broken;
    /** The ring touched an unmapped IOVA and waits for an IOTLB update (worker thread). */
    volatile boolean iotlbMiss;
    /** SET_VRING_KICK came before the IOTLB mapped the ring areas (connection thread). */
    boolean waitingStart;
    boolean pendingKick;

    Vring(int index, VhostUserBackend backend, EventLoop worker) {
        this.index = index;
        this.backend = backend;
        this.worker = worker;
    }

    /** {@return the ring's index} */
    @Override
    public int index() {
        return index;
    }

    /** {@return the device-side virtqueue (split or packed, as negotiated)} */
    @Override
    public DeviceQueue queue() {
        return queue;
    }

    /** {@return the guest memory the ring's buffers live in (the snapshot current for this call)} */
    @Override
    public GuestMemory memory() {
        return memory;
    }

    /** {@return whether the ring is enabled (a disabled ring may be processed but must have no side effects)} */
    @Override
    public boolean isEnabled() {
        return enabled;
    }

    /** {@return whether the ring is started} */
    @Override
    public boolean isStarted() {
        return started;
    }

    /** {@return the virtio features the front-end acknowledged} */
    @Override
    public long negotiatedFeatures() {
        return backend.negotiatedFeatures();
    }

    /**
     * Pops the next available chain.
     *
     * @return the chain (valid until completed), or {@code null} when the ring is empty, stopped or broken
     * @throws VirtqueueException when the guest's ring is malformed (the ring is then broken)
     */
    @Override
    public DescriptorChain pop() throws VirtqueueException {
        if (!started || broken || iotlbMiss || queue == null) {
            return null;
        }
        try {
            return queue.pop();
        } catch (VirtqueueException e) {
            if (e.reason() == VirtqueueException.Reason.BUFFER_OUTSIDE_MEMORY && !queue.isBroken() && backend.iommu()) {
                // An IOVA the IOTLB does not map yet: nothing was consumed; ask for it, pop again after the update.
                backend.iotlbMissed(this, e.address());
            } else {
                markBroken(e);
            }
            throw e;
        }
    }

    /**
     * Returns a chain to the guest.
     *
     * @param chain a chain from {@link #pop()}
     * @param writtenBytes how many bytes the device wrote into its writable buffers
     * @throws VirtqueueException when the chain is not in flight or the used ring is outside memory
     */
    @Override
    public void complete(DescriptorChain chain, long writtenBytes) throws VirtqueueException {
        try {
            queue.addUsed(chain, writtenBytes);
        } catch (VirtqueueException e) {
            markBroken(e);
            throw e;
        }
    }

    /**
     * Notifies the guest when the ring's suppression rules (EVENT_IDX or flags) ask for it: signals the
     * call eventfd, or sends VRING_CALL on the back-end channel when in-band notifications are in use.
     *
     * @throws IOException when the notification cannot be sent
     */
    @Override
    public void notifyGuest() throws IOException {
        if (queue == null || !started) {
            return;
        }
        if (queue.needsNotification()) {
            signalGuest();
        }
    }

    /**
     * Notifies the guest unconditionally.
     *
     * @throws IOException when the notification cannot be sent
     */
    @Override
    public void signalGuest() throws IOException {
        EventFd c = call;
        if (c != null) {
            c.signal();
        } else if (inbandCall) {
            backend.sendInbandCall(index);
        }
    }

    void markBroken(Exception cause) {
        if (!broken) {
            broken = true;
            if (queue != null) {
                queue.markBroken();
            }
            backend.ringBroken(this, cause);
        }
    }

    @Override
    public String toString() {
        return "Vring[" + index + (started ? ", started" : "") + (enabled ? ", enabled" : "") + (broken ? ", broken" : "") + "]";
    }
}
