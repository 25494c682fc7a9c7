package dev.outproc.core.virtqueue;

import dev.outproc.core.memory.DirtyLog;
import dev.outproc.core.memory.GuestMemory;

import java.util.PrimitiveIterator;

/**
 * The device side of a virtqueue, split ({@link SplitQueue}) or packed ({@link PackedQueue}).
 *
 * <p>A queue is driven by one thread at a time. Typical service routine after a kick (outproc's own tests
 * run this exact code against both ring formats; a virtio device served by a transport gets this loop
 * from {@link dev.outproc.core.virtio.VirtioQueue#drain}):
 * {@snippet :
 * queue.disableNotifications();
 * while (true) {
 *     DescriptorChain chain;
 *     while ((chain = queue.pop()) != null) {
 *         long written = handle(chain);            // read readable buffers, fill writable ones
 *         queue.addUsed(chain, written);           // publishes; see addUsedBatch / stageUsed for batching
 *     }
 *     if (queue.needsNotification()) {
 *         callFd.signal();
 *     }
 *     if (!queue.enableNotifications()) {
 *         break;                                   // nothing arrived meanwhile: wait for the next kick
 *     }
 *     queue.disableNotifications();
 * }
 * }
 *
 * <p>Every value read from guest memory is validated; a violation throws {@link VirtqueueException} and
 * marks the queue broken. {@link #pop()}, {@link #addUsed}, {@link #needsNotification()} and the
 * notification toggles allocate nothing in steady state (see the chain <a href="DescriptorChain.html#reuse">reuse
 * contract</a>).
 */
public interface DeviceQueue {
    /**
     * (Re)configures the queue and resets its indices to zero (a fresh ring).
     *
     * @param config addresses, size and features
     * @param memory the guest memory snapshot the rings and buffers live in
     * @throws VirtqueueException QUEUE_SIZE_INVALID, RING_MISALIGNED or RING_OUTSIDE_MEMORY
     */
    void configure(QueueConfig config, GuestMemory memory) throws VirtqueueException;

    /** {@return the configuration, or null before {@link #configure}} */
    QueueConfig config();

    /**
     * Swaps the guest memory snapshot at a safe point (between batches) and re-resolves the rings.
     * Chains in flight keep the buffers of the snapshot they were popped from.
     *
     * @param memory the new snapshot
     * @throws VirtqueueException RING_OUTSIDE_MEMORY when a ring is not in the new memory (the queue is then broken)
     */
    void setMemory(GuestMemory memory) throws VirtqueueException;

    /**
     * Takes the next available chain. Resubmitted chains ({@link #resubmit}) come first.
     *
     * @return the chain, or null when the driver has made nothing new available
     * @throws VirtqueueException when the guest broke a ring rule (the queue is then broken) or the queue is broken
     */
    DescriptorChain pop() throws VirtqueueException;

    /**
     * Writes a chain's used entry and publishes it (release store of the used index / flags).
     *
     * @param chain a chain popped from this queue and still in flight
     * @param writtenBytes bytes written into its writable buffers (0..{@link DescriptorChain#totalWritable()})
     * @throws VirtqueueException when the queue is broken
     * @throws IllegalArgumentException when the chain is not in flight on this queue or the length is out of range
     */
    default void addUsed(DescriptorChain chain, long writtenBytes) throws VirtqueueException {
        stageUsed(chain, writtenBytes);
        publishUsed();
    }

    /**
     * Writes the used entries of {@code count} chains and publishes them with one release store.
     *
     * @param chains the chains
     * @param writtenBytes their written lengths
     * @param count how many entries of the arrays to use
     * @throws VirtqueueException when the queue is broken
     */
    default void addUsedBatch(DescriptorChain[] chains, long[] writtenBytes, int count) throws VirtqueueException {
        for (int i = 0; i < count; i++) {
            stageUsed(chains[i], writtenBytes[i]);
        }
        publishUsed();
    }

    /**
     * Writes a chain's used entry without making it visible; {@link #publishUsed()} publishes every
     * staged entry at once. The chain is no longer in flight after this call.
     *
     * @param chain a chain popped from this queue and still in flight
     * @param writtenBytes bytes written into its writable buffers
     * @throws VirtqueueException when the queue is broken
     */
    void stageUsed(DescriptorChain chain, long writtenBytes) throws VirtqueueException;

    /**
     * Makes staged used entries visible to the driver (release). Does nothing when none are staged.
     *
     * @throws VirtqueueException when the queue is broken
     */
    void publishUsed() throws VirtqueueException;

    /**
     * Decides whether the driver wants a used-buffer notification for what was published since the
     * last call, after a full fence (VIRTIO 1.x §2.7 "Used/Available Buffer Notification Suppression", §2.8 "Event Suppression Structure Format"). Call it after {@link #publishUsed()}.
     *
     * @return whether to signal the call eventfd / interrupt
     * @throws VirtqueueException when the queue is broken
     */
    boolean needsNotification() throws VirtqueueException;

    /**
     * Asks the driver for available-buffer notifications (kicks) again, then re-checks the ring after
     * a full fence: a buffer made available just before the flag became visible would otherwise never
     * be kicked.
     *
     * @return true when work is available (pop again before sleeping)
     * @throws VirtqueueException when the queue is broken
     */
    boolean enableNotifications() throws VirtqueueException;

    /**
     * Tells the driver that kicks are not needed (the device is polling).
     *
     * @throws VirtqueueException when the queue is broken
     */
    void disableNotifications() throws VirtqueueException;

    /**
     * Logs guest writes for live migration: when set, {@link #stageUsed} marks the first
     * {@code writtenBytes} of the chain's writable buffers and the ring bytes it writes.
     *
     * @param log the dirty log, or null to stop logging
     * @param usedRingLogGpa the address at which the used ring (split) / descriptor ring (packed) is
     *        logged (vhost-user {@code log_guest_addr}), or {@link #NO_RING_LOG} to log the buffers only
     *        (vhost-user: SET_VRING_ADDR without {@code VHOST_VRING_F_LOG})
     */
    void setDirtyLog(DirtyLog log, long usedRingLogGpa);

    /** {@link #setDirtyLog}'s ring address when the ring's own writes are not logged, only its buffers. */
    long NO_RING_LOG = -1;

    /**
     * Installs an observer of pops and completions.
     *
     * @param observer the observer ({@link QueueObserver#NONE} to remove)
     */
    void setObserver(QueueObserver observer);

    /** Marks the queue broken: every later data-path call throws {@link VirtqueueException.Reason#BROKEN}. */
    void markBroken();

    /**
     * Makes a buffer or indirect-table address outside memory a recoverable translation miss instead of
     * a broken queue (a device behind an IOMMU: the address is an IOVA the IOTLB does not map yet). The
     * {@link VirtqueueException} of reason {@code BUFFER_OUTSIDE_MEMORY} then carries the
     * {@linkplain VirtqueueException#address() address}, nothing has been consumed, and {@link #pop()}
     * returns the same chain once {@link #setMemory} brought the missing mapping. Off by default.
     *
     * @param recoverable whether misses are recoverable
     */
    void setMissesRecoverable(boolean recoverable);

    /** {@return whether the queue is broken} */
    boolean isBroken();

    /** {@return the state to migrate or to resume from} */
    QueueState exportState();

    /**
     * Resumes from a saved state: configures the queue with the state's size, addresses and event-idx
     * flag (name and other features from {@code template}) and sets its indices.
     *
     * @param template name and features
     * @param state the state
     * @param memory guest memory
     * @throws VirtqueueException as {@link #configure}
     */
    void importState(QueueConfig template, QueueState state, GuestMemory memory) throws VirtqueueException;

    /** {@return how many chains are in flight} */
    int inFlightCount();

    /**
     * {@return the ids of chains in flight, in the order they were popped (allocates; for migration and inflight recovery)}
     */
    int[] inFlightIds();

    /** {@return an iterator over {@link #inFlightIds()}} */
    default PrimitiveIterator.OfInt inFlightIterator() {
        return java.util.Arrays.stream(inFlightIds()).iterator();
    }

    /**
     * Makes the given chains pop again before anything new, in the given order (vhost-user inflight
     * recovery). See the implementing class for what an id means.
     *
     * @param ids head indices (split) or buffer ids (packed)
     * @throws VirtqueueException when an id is out of range
     */
    void resubmit(int[] ids) throws VirtqueueException;
}
