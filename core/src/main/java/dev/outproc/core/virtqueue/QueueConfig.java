package dev.outproc.core.virtqueue;

/**
 * Where a virtqueue lives and which ring features were negotiated.
 *
 * <p>Addresses are guest-physical. For a split ring (VIRTIO 1.x §2.7) {@code descAddr} is the
 * descriptor table, {@code driverAddr} the available ring and {@code deviceAddr} the used ring; for a
 * packed ring (§2.8) they are the descriptor ring, the driver event suppression area and the device
 * event suppression area. {@code features} is the negotiated feature word; only the ring bits
 * ({@link #F_INDIRECT_DESC}, {@link #F_EVENT_IDX}, {@link #F_IN_ORDER}) matter here.
 *
 * @param name a name for error messages and logs (e.g. "blk0/rq1")
 * @param size number of descriptors
 * @param descAddr descriptor table / ring
 * @param driverAddr available ring / driver event area
 * @param deviceAddr used ring / device event area
 * @param features negotiated feature bits
 */
public record QueueConfig(String name, int size, long descAddr, long driverAddr, long deviceAddr, long features) {
    /** VIRTIO_F_INDIRECT_DESC (bit 28). */
    public static final long F_INDIRECT_DESC = 1L << 28;
    /** VIRTIO_F_EVENT_IDX (bit 29). */
    public static final long F_EVENT_IDX = 1L << 29;
    /** VIRTIO_F_RING_PACKED (bit 34); informational here, the queue class decides the format. */
    public static final long F_RING_PACKED = 1L << 34;
    /** VIRTIO_F_IN_ORDER (bit 35). */
    public static final long F_IN_ORDER = 1L << 35;

    /** The largest queue size either format allows. */
    public static final int MAX_SIZE = 32768;

    /** Checks the name. */
    public QueueConfig {
        if (name == null) {
            throw new IllegalArgumentException("queue name must not be null");
        }
    }

    /** {@return whether VIRTIO_F_EVENT_IDX is negotiated} */
    public boolean eventIdx() {
        return (features & F_EVENT_IDX) != 0;
    }

    /** {@return whether VIRTIO_F_INDIRECT_DESC is negotiated} */
    public boolean indirectDesc() {
        return (features & F_INDIRECT_DESC) != 0;
    }

    /** {@return whether VIRTIO_F_IN_ORDER is negotiated} */
    public boolean inOrder() {
        return (features & F_IN_ORDER) != 0;
    }
}
