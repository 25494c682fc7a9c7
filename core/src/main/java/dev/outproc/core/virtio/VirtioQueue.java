package dev.outproc.core.virtio;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.virtqueue.DescriptorChain;
import dev.outproc.core.virtqueue.DeviceQueue;
import dev.outproc.core.virtqueue.VirtqueueException;

import java.io.IOException;

/**
 * One virtqueue as a {@link VirtioDevice} sees it, whatever transport serves the device: the
 * device-side ring, the guest memory its buffers live in, and the guest notification. The transport
 * (vhost-user, vfio-user's virtio-pci) creates it and hands it to {@link VirtioDevice#processQueue} on the
 * queue's worker thread; use it only there.
 *
 * <p>{@link #pop()}, {@link #complete}, {@link #notifyGuest()} and {@link #drain} allocate nothing in
 * steady state.
 *
 * <h2 id="enabled">Enabled and started</h2>
 * A queue is processed only while it is started (the transport has its memory, addresses and
 * notification). {@link #pop()} returns {@code null} on a queue that is stopped, broken, or waiting for an
 * address translation, so a device needs no checks of its own. A started queue may be disabled
 * (vhost-user's SET_VRING_ENABLE 0): the transport does not call {@link VirtioDevice#processQueue} for it
 * then, so a device need not test {@link #isEnabled()} either, unless it moves buffers between queues
 * itself (a net device's loopback, for example, should not fill a disabled receive queue).
 */
public interface VirtioQueue {
    /** {@return the queue's index (0-based, in the device's queue numbering)} */
    int index();

    /** {@return the device-side virtqueue (split or packed, as negotiated), or {@code null} before it starts} */
    DeviceQueue queue();

    /** {@return the guest memory the queue's buffers live in (the snapshot current for this call)} */
    GuestMemory memory();

    /**
     * {@return whether the queue is enabled} A device needs it only for a queue it fills on its own (see
     * <a href="#enabled">Enabled and started</a>); the transport never hands it a disabled queue.
     */
    boolean isEnabled();

    /** {@return whether the queue is started} */
    boolean isStarted();

    /** {@return the virtio features the driver acknowledged} */
    long negotiatedFeatures();

    /**
     * {@return whether the transport polls this queue} A polled queue is processed on every turn of a
     * busy-polling worker, kicked or not, so the device may leave the driver's notifications (kicks)
     * suppressed for good: the driver then never makes a system call to notify. Default {@code false}.
     */
    default boolean isPolled() {
        return false;
    }

    /**
     * Pops the next available chain.
     *
     * @return the chain (valid until completed), or {@code null} when the queue is empty, stopped,
     *         broken or waiting for a translation
     * @throws VirtqueueException when the guest's ring is malformed (the queue is then broken)
     */
    DescriptorChain pop() throws VirtqueueException;

    /**
     * Returns a chain to the guest.
     *
     * @param chain a chain from {@link #pop()}
     * @param writtenBytes how many bytes the device wrote into the chain's writable buffers
     * @throws VirtqueueException when the chain is not in flight or the used ring is outside memory
     */
    void complete(DescriptorChain chain, long writtenBytes) throws VirtqueueException;

    /**
     * Stages a completion without publishing it: the next {@link #complete} or {@link #publishCompletions()}
     * publishes it together with every completion staged before (one used-index store for all; the driver
     * sees them at once).
     *
     * @param chain a chain from {@link #pop()}
     * @param writtenBytes how many bytes the device wrote into the chain's writable buffers
     * @throws VirtqueueException when the chain is not in flight or the used ring is outside memory (the
     *         queue is then broken)
     */
    default void stageCompletion(DescriptorChain chain, long writtenBytes) throws VirtqueueException {
        queue().stageUsed(chain, writtenBytes);
    }

    /**
     * Publishes the completions {@link #stageCompletion} staged; nothing when none are.
     *
     * @throws VirtqueueException when the used ring is outside memory (the queue is then broken)
     */
    default void publishCompletions() throws VirtqueueException {
        DeviceQueue q = queue();
        if (q != null) {
            q.publishUsed();
        }
    }

    /**
     * Notifies the guest when the queue's suppression rules (EVENT_IDX or flags) ask for it.
     *
     * @throws IOException when the notification cannot be sent
     */
    void notifyGuest() throws IOException;

    /**
     * Notifies the guest unconditionally.
     *
     * @throws IOException when the notification cannot be sent
     */
    void signalGuest() throws IOException;

    /**
     * The loop every request-response device runs: with guest notifications (kicks) suppressed, pops each
     * available chain, hands it to {@code handler}, completes it with the byte count the handler returns,
     * notifies the guest, and re-enables notifications, repeating when the driver added buffers in the
     * meantime (so no kick is lost between the last pop and the re-enable). VIRTIO 1.3 §2.7.10 and §2.8.10.
     * On a {@linkplain #isPolled() polled} queue kicks stay suppressed: the next turn finds what comes later.
     * Completions are published in batches (see {@link #PUBLISH_BATCH}), always before the notification.
     *
     * <p>Allocates nothing when {@code handler} is a field rather than a capturing lambda.
     *
     * @param handler serves one chain and returns the bytes it wrote into the chain's writable part
     * @return the number of chains served
     * @throws IOException when the ring is malformed or the handler fails (the queue is then broken)
     */
    default int drain(ChainHandler handler) throws IOException {
        DeviceQueue queue = queue();
        if (queue == null || !isStarted()) {
            return 0;
        }
        if (isPolled()) {
            queue.disableNotifications();
            int served = serveAvailable(handler);
            if (served != 0) {
                notifyGuest();
            }
            return served;
        }
        int served = 0;
        do {
            queue.disableNotifications();
            served += serveAvailable(handler);
            notifyGuest();
        } while (queue.enableNotifications() && isStarted());
        return served;
    }

    /**
     * Serves every available chain for {@link #drain}, publishing the completions once per
     * {@link #PUBLISH_BATCH} chains and at the end: one used-index store (and one cache line the driver
     * must fetch again) per batch instead of per chain, as VIRTIO 1.3 §2.7.14 lets a device do.
     *
     * @return the number of chains served
     */
    private int serveAvailable(ChainHandler handler) throws IOException {
        int served = 0;
        int staged = 0;
        DescriptorChain chain;
        while ((chain = pop()) != null) {
            stageCompletion(chain, handler.handle(chain));
            served++;
            if (++staged == PUBLISH_BATCH) {
                publishCompletions();
                staged = 0;
            }
        }
        if (staged != 0) {
            publishCompletions();
        }
        return served;
    }

    /** The most completions {@link #drain} stages before it publishes them. */
    int PUBLISH_BATCH = 64;

    /** Serves one chain for {@link #drain}. */
    @FunctionalInterface
    interface ChainHandler {
        /**
         * Serves one request.
         *
         * @param chain the chain, readable part first
         * @return how many bytes were written into the chain's writable part
         * @throws IOException when the request cannot be served at all (breaks the queue; answer a
         *         request the guest got wrong with the device's error status instead)
         */
        long handle(DescriptorChain chain) throws IOException;
    }
}
