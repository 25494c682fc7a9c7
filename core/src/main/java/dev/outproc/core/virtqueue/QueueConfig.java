package dev.outproc.core.virtqueue;

import dev.outproc.core.virtio.VirtioFeature;

/**
 * Where a virtqueue lives and which ring features were negotiated.
 *
 * <p>Addresses are guest-physical. For a split ring (VIRTIO 1.x §2.7) {@code descAddr} is the
 * descriptor table, {@code driverAddr} the available ring and {@code deviceAddr} the used ring; for a
 * packed ring (§2.8) they are the descriptor ring, the driver event suppression area and the device
 * event suppression area. {@code features} is the negotiated feature word; only the ring bits
 * ({@link VirtioFeature#INDIRECT_DESC}, {@link VirtioFeature#EVENT_IDX}, {@link VirtioFeature#IN_ORDER})
 * matter here.
 *
 * @param name a name for error messages and logs (e.g. "blk0/rq1")
 * @param size number of descriptors
 * @param descAddr descriptor table / ring
 * @param driverAddr available ring / driver event area
 * @param deviceAddr used ring / device event area
 * @param features negotiated feature bits
 */
public record QueueConfig(String name, int size, long descAddr, long driverAddr, long deviceAddr, long features) {
    /**
     * VIRTIO_F_INDIRECT_DESC (bit 28).
     *
     * @deprecated the virtio feature bits are defined once, in {@link VirtioFeature}: use
     *             {@code VirtioFeature.INDIRECT_DESC.mask()}
     */
    @Deprecated(since = "0.2")
    public static final long F_INDIRECT_DESC = VirtioFeature.INDIRECT_DESC.mask();
    /**
     * VIRTIO_F_EVENT_IDX (bit 29).
     *
     * @deprecated use {@code VirtioFeature.EVENT_IDX.mask()}
     */
    @Deprecated(since = "0.2")
    public static final long F_EVENT_IDX = VirtioFeature.EVENT_IDX.mask();
    /**
     * VIRTIO_F_RING_PACKED (bit 34); informational here, the queue class decides the format.
     *
     * @deprecated use {@code VirtioFeature.RING_PACKED.mask()}
     */
    @Deprecated(since = "0.2")
    public static final long F_RING_PACKED = VirtioFeature.RING_PACKED.mask();
    /**
     * VIRTIO_F_IN_ORDER (bit 35).
     *
     * @deprecated use {@code VirtioFeature.IN_ORDER.mask()}
     */
    @Deprecated(since = "0.2")
    public static final long F_IN_ORDER = VirtioFeature.IN_ORDER.mask();

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
        return VirtioFeature.EVENT_IDX.isSetIn(features);
    }

    /** {@return whether VIRTIO_F_INDIRECT_DESC is negotiated} */
    public boolean indirectDesc() {
        return VirtioFeature.INDIRECT_DESC.isSetIn(features);
    }

    /** {@return whether VIRTIO_F_IN_ORDER is negotiated} */
    public boolean inOrder() {
        return VirtioFeature.IN_ORDER.isSetIn(features);
    }
}
