package dev.outproc.vhost.backend;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.event.EventLoop;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.virtio.VirtioQueue;
import dev.outproc.core.virtqueue.DescriptorChain;
import dev.outproc.core.virtqueue.DeviceQueue;
import dev.outproc.core.virtqueue.VirtqueueException;

import java.io.IOException;

/**
 * One ring of a vhost-user back-end: the {@link VirtioQueue} the device sees (the device-side virtqueue,
 * the guest memory it reads, and the guest notification). Handed to {@link VhostUserDevice#processQueue}
 * on the ring's worker thread; use it only there. The object lives as long as the back-end; what a
 * front-end set up for the ring lives in a per-connection state behind it, so between connections the
 * ring is stopped, disabled and empty.
 *
 * <p>{@link #pop()}, {@link #complete} and {@link #notifyGuest()} allocate nothing in steady state.
 */
public final class Vring implements VirtioQueue {
    private final int index;
    /** Replaced only between connections, when the worker's loop had ended ({@link VhostUserBackend#serve}). */
    private volatile EventLoop worker;
    /** The connection's state of this ring; {@code null} while no front-end is connected. */
    private volatile RingState state;

    Vring(int index, EventLoop worker) {
        this.index = index;
        this.worker = worker;
    }

    EventLoop worker() {
        return worker;
    }

    /** Moves the ring to a new worker; only while no connection is served. */
    void replaceWorker(EventLoop next) {
        worker = next;
    }

    RingState state() {
        return state;
    }

    /** Installs a connection's state (or {@code null} at disconnect); the ring is stopped. */
    void attach(RingState next) {
        state = next;
    }

    /** {@return the ring's index} */
    @Override
    public int index() {
        return index;
    }

    /** {@return the device-side virtqueue (split or packed, as negotiated), or {@code null} before it starts} */
    @Override
    public DeviceQueue queue() {
        RingState s = state;
        return s == null ? null : s.queue;
    }

    /** {@return the guest memory the ring's buffers live in (the snapshot current for this call)} */
    @Override
    public GuestMemory memory() {
        RingState s = state;
        return s == null ? GuestMemory.empty() : s.memory;
    }

    /** {@return whether the ring is enabled (a disabled ring may be processed but must have no side effects)} */
    @Override
    public boolean isEnabled() {
        RingState s = state;
        return s != null && s.enabled;
    }

    /** {@return whether the ring is started} */
    @Override
    public boolean isStarted() {
        RingState s = state;
        return s != null && s.started;
    }

    /** {@return whether a busy-polling worker runs this ring on every turn, kicked or not} */
    @Override
    public boolean isPolled() {
        RingState s = state;
        return s != null && s.polled;
    }

    /** {@return whether the ring is broken (a malformed ring, until the front-end restarts it)} */
    boolean isBroken() {
        RingState s = state;
        return s != null && s.broken;
    }

    /** {@return the virtio features the front-end acknowledged (0 while none is connected)} */
    @Override
    public long negotiatedFeatures() {
        RingState s = state;
        return s == null ? 0 : s.session.negotiatedFeatures();
    }

    /**
     * Pops the next available chain.
     *
     * @return the chain (valid until completed), or {@code null} when the ring is empty, stopped or broken
     * @throws VirtqueueException when the guest's ring is malformed (the ring is then broken)
     */
    @Override
    public DescriptorChain pop() throws VirtqueueException {
        RingState s = state;
        if (s == null || !s.started || s.broken || s.iotlbMiss || s.queue == null) {
            return null;
        }
        DeviceQueue queue = s.queue;
        try {
            return queue.pop();
        } catch (VirtqueueException e) {
            if (e.reason() == VirtqueueException.Reason.BUFFER_OUTSIDE_MEMORY && !queue.isBroken()
                    && s.session.iova().iommu()) {
                // An IOVA the IOTLB does not map yet: nothing was consumed; ask for it, pop again after the update.
                s.session.iova().missed(s, e.address());
            } else {
                s.markBroken(e);
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
        returnChain(chain, writtenBytes, false);
    }

    @Override
    public void stageCompletion(DescriptorChain chain, long writtenBytes) throws VirtqueueException {
        returnChain(chain, writtenBytes, true);
    }

    /** Adds a used entry, published now or staged for {@link #publishCompletions}; a failure breaks the ring. */
    private void returnChain(DescriptorChain chain, long writtenBytes, boolean staged) throws VirtqueueException {
        RingState s = state;
        if (s == null || s.queue == null) {
            throw new IllegalStateException("ring " + index + " has no queue (not started)");
        }
        try {
            if (staged) {
                s.queue.stageUsed(chain, writtenBytes);
            } else {
                s.queue.addUsed(chain, writtenBytes);
            }
        } catch (VirtqueueException e) {
            s.markBroken(e);
            throw e;
        }
    }

    @Override
    public void publishCompletions() throws VirtqueueException {
        RingState s = state;
        if (s == null || s.queue == null) {
            return;
        }
        try {
            s.queue.publishUsed();
        } catch (VirtqueueException e) {
            s.markBroken(e);
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
        RingState s = state;
        if (s == null || s.queue == null || !s.started) {
            return;
        }
        if (s.queue.needsNotification()) {
            signal(s);
        }
    }

    /**
     * Notifies the guest unconditionally.
     *
     * @throws IOException when the notification cannot be sent
     */
    @Override
    public void signalGuest() throws IOException {
        RingState s = state;
        if (s != null) {
            signal(s);
        }
    }

    private void signal(RingState s) throws IOException {
        EventFd c = s.call;
        if (c != null) {
            c.signal();
        } else if (s.inbandCall) {
            s.session.backendChannel().sendInbandCall(index);
        }
    }

    @Override
    public String toString() {
        RingState s = state;
        return "Vring[" + index + (s == null ? "" : (s.started ? ", started" : "") + (s.enabled ? ", enabled" : "")
                + (s.broken ? ", broken" : "")) + "]";
    }
}
