package dev.outproc.core.virtqueue;

/**
 * The device-side ring state that migration and back-end restart carry: everything besides guest
 * memory needed to resume a queue where it stopped.
 *
 * <p>Indices: split rings use free-running 16-bit indices ({@code 0..65535}); packed rings use ring
 * slots ({@code 0..size-1}) plus wrap counters. vhost-user {@code GET_VRING_BASE} reports, for packed
 * rings, {@code nextAvail | availWrap << 15 | nextUsed << 16 | usedWrap << 31}
 * ({@link #packedVringBase()}).
 *
 * @param size number of descriptors
 * @param descAddr descriptor table / ring
 * @param driverAddr available ring / driver event area
 * @param deviceAddr used ring / device event area
 * @param nextAvail the next available index (split) or slot (packed) the device will read
 * @param nextUsed the next used index (split) or slot (packed) the device will write
 * @param availWrapCounter packed: the device's avail wrap counter; split: false
 * @param usedWrapCounter packed: the device's used wrap counter; split: false
 * @param eventIdx whether VIRTIO_F_EVENT_IDX is in use
 */
public record QueueState(int size, long descAddr, long driverAddr, long deviceAddr, int nextAvail, int nextUsed,
                         boolean availWrapCounter, boolean usedWrapCounter, boolean eventIdx) {
    /** Checks the index ranges. */
    public QueueState {
        if (size <= 0 || size > QueueConfig.MAX_SIZE) {
            throw new IllegalArgumentException("queue size out of range, size=" + size);
        }
        if (nextAvail < 0 || nextAvail > 0xffff || nextUsed < 0 || nextUsed > 0xffff) {
            throw new IllegalArgumentException("ring index out of range, nextAvail=" + nextAvail + ", nextUsed=" + nextUsed);
        }
    }

    /** {@return the packed-ring vring base word of vhost-user GET_VRING_BASE} */
    public long packedVringBase() {
        return (nextAvail & 0x7fffL) | (availWrapCounter ? 1L << 15 : 0) | ((nextUsed & 0x7fffL) << 16)
                | (usedWrapCounter ? 1L << 31 : 0);
    }
}
