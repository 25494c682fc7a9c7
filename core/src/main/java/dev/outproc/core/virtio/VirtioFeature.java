package dev.outproc.core.virtio;

/**
 * The device-independent virtio feature bits (VIRTIO 1.3 section 6 "Reserved Feature Bits"), the same
 * under every transport. Device-type bits (below 24) belong to each device type; transport-only bits
 * (vhost-user's {@code VHOST_USER_F_PROTOCOL_FEATURES} at 30 and {@code VHOST_F_LOG_ALL} at 26) live with
 * their transport. The virtqueue layer reads the ring bits ({@link #INDIRECT_DESC}, {@link #EVENT_IDX},
 * {@link #IN_ORDER}) from a queue's negotiated feature word.
 */
public enum VirtioFeature {
    /** Bit 24: notify even when the ring is empty (legacy). */
    NOTIFY_ON_EMPTY(24),
    /** Bit 27: any descriptor layout (legacy). */
    ANY_LAYOUT(27),
    /** Bit 28: indirect descriptor tables. */
    INDIRECT_DESC(28),
    /** Bit 29: used_event / avail_event notification suppression. */
    EVENT_IDX(29),
    /** Bit 32: VIRTIO 1.0 or later. */
    VERSION_1(32),
    /** Bit 33: addresses are IOVAs behind a platform IOMMU (formerly IOMMU_PLATFORM). */
    ACCESS_PLATFORM(33),
    /** Bit 34: packed virtqueues. */
    RING_PACKED(34),
    /** Bit 35: buffers are used in the order they were made available. */
    IN_ORDER(35),
    /** Bit 36: platform memory ordering for the rings. */
    ORDER_PLATFORM(36),
    /** Bit 37: single-root I/O virtualization. */
    SR_IOV(37),
    /** Bit 38: the driver passes extra data in notifications. */
    NOTIFICATION_DATA(38),
    /** Bit 39: the driver uses the device-provided notification data. */
    NOTIF_CONFIG_DATA(39),
    /** Bit 40: individual virtqueues can be reset. */
    RING_RESET(40),
    /** Bit 41: administration virtqueues. */
    ADMIN_VQ(41);

    private final int bit;

    VirtioFeature(int bit) {
        this.bit = bit;
    }

    /** {@return the bit number} */
    public int bit() {
        return bit;
    }

    /** {@return {@code 1L << bit()}} */
    public long mask() {
        return 1L << bit;
    }

    /**
     * {@return whether this feature's bit is set in {@code features}}
     *
     * @param features a feature bit set
     */
    public boolean isSetIn(long features) {
        return (features & mask()) != 0;
    }

    /**
     * {@return the union of the masks of {@code features}}
     *
     * @param features the features
     */
    public static long maskOf(VirtioFeature... features) {
        long mask = 0;
        for (VirtioFeature f : features) {
            mask |= f.mask();
        }
        return mask;
    }
}
