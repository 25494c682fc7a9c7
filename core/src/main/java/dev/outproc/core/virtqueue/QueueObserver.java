package dev.outproc.core.virtqueue;

/**
 * Receives the device-side events a vhost-user back-end needs to keep its inflight region
 * ({@code VHOST_USER_GET_INFLIGHT_FD}) up to date without wrapping every queue call.
 *
 * <p>Called on the thread that drives the queue, synchronously, in this order for one chain:
 * {@link #chainPopped} when {@link DeviceQueue#pop()} hands it out, {@link #chainCompleted} when
 * {@link DeviceQueue#addUsed} writes its used entry, {@link #usedIndexPublished} when the entry becomes
 * visible to the driver. Implementations must not allocate or block if the data path is to stay
 * allocation-free. Every method defaults to doing nothing.
 */
public interface QueueObserver {
    /** The observer that does nothing. */
    QueueObserver NONE = new QueueObserver() {
    };

    /**
     * A chain was handed to the device.
     *
     * @param id head descriptor index (split) or buffer id (packed)
     */
    default void chainPopped(int id) {
    }

    /**
     * A chain's used entry was written (not yet published).
     *
     * @param id head descriptor index (split) or buffer id (packed)
     * @param writtenBytes the used length
     */
    default void chainCompleted(int id, long writtenBytes) {
    }

    /**
     * Used entries became visible to the driver.
     *
     * @param nextUsed split: the new used index (16-bit, free running); packed: the next used ring slot
     * @param usedWrapCounter packed: the used wrap counter after the publication; split: always false
     */
    default void usedIndexPublished(int nextUsed, boolean usedWrapCounter) {
    }
}
