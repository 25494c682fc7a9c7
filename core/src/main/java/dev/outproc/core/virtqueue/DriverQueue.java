package dev.outproc.core.virtqueue;

/**
 * The driver side of a virtqueue (the guest's role): what front-ends, tests and benchmarks use to offer
 * buffers to a device and take them back. {@link SplitDriverQueue#allocate} and
 * {@link PackedDriverQueue#allocate} create one in guest memory, taking the rings from a
 * {@link GpaAllocator}; the device serves {@link #config()}. One request with a reply buffer, from offer
 * to completion (outproc's own tests run this exact code against both ring formats):
 * {@snippet :
 * driver.add(requestGpa, requestLength, false);   // device-readable
 * driver.add(replyGpa, replyLength, true);        // device-writable
 * int id = driver.post(false);                    // -1: no room, reap first (the buffers stay staged)
 * driver.publish();
 * if (driver.kickNeeded()) {
 *     kickFd.signal();
 * }
 * long used;
 * while ((used = driver.pollUsed()) != DriverQueue.NONE) {
 *     int doneId = DriverQueue.usedId(used);
 *     long written = DriverQueue.usedLength(used);
 * }
 * }
 *
 * <p>Not thread-safe: one thread drives a queue. {@link #add}, {@link #post}, {@link #publish},
 * {@link #kickNeeded} and {@link #pollUsed} allocate nothing. Values the device writes (used ids and
 * lengths) are validated: a device can be a separate, untrusted process too.
 */
public interface DriverQueue {
    /** What {@link #pollUsed()} returns when nothing was used. */
    long NONE = -1L;

    /** {@return the configuration a device needs to serve this queue (addresses, size, features)} */
    QueueConfig config();

    /**
     * Stages one buffer of the next chain. Device-readable buffers must come before device-writable ones.
     *
     * @param gpa guest-physical address
     * @param length byte count
     * @param writable whether the device writes it
     */
    void add(long gpa, int length, boolean writable);

    /** Drops the buffers staged since the last successful {@link #post}. */
    void clearStaged();

    /**
     * Writes the staged buffers as one chain (not yet visible to the device).
     *
     * @param indirect whether to put them in an indirect table
     * @return the chain's id (split: head index; packed: buffer id), or -1 when the ring has no room
     *         (the buffers stay staged)
     */
    int post(boolean indirect);

    /** Makes every chain posted since the last call visible to the device (release store). */
    void publish();

    /**
     * Decides, after a full fence, whether the device wants a kick for what was published since the
     * last call (VIRTIO 1.x §2.7 "Used/Available Buffer Notification Suppression", §2.8 "Event Suppression Structure Format").
     *
     * @return whether to signal the kick eventfd
     */
    boolean kickNeeded();

    /**
     * Takes the next used entry.
     *
     * @return {@link #NONE}, or the id in the high 32 bits and the written length in the low 32 bits
     * @throws VirtqueueException when the device returned an id that is not in flight or a length above
     *         the chain's writable bytes
     */
    long pollUsed() throws VirtqueueException;

    /**
     * Asks the device for used-buffer notifications, then re-checks after a full fence.
     *
     * @return whether used entries are already waiting (poll before sleeping)
     */
    boolean enableUsedNotifications();

    /** Tells the device that no used-buffer notifications are needed (the driver polls). */
    void disableUsedNotifications();

    /** {@return how many chains are posted and not yet reaped} */
    int inFlightCount();

    /**
     * {@return the id of a {@link #pollUsed()} result}
     *
     * @param used a result other than {@link #NONE}
     */
    static int usedId(long used) {
        return (int) (used >>> 32);
    }

    /**
     * {@return the written length of a {@link #pollUsed()} result}
     *
     * @param used a result other than {@link #NONE}
     */
    static long usedLength(long used) {
        return used & 0xffff_ffffL;
    }
}
