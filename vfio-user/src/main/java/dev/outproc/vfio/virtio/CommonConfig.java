package dev.outproc.vfio.virtio;

/**
 * Offsets of the virtio-pci common configuration structure (VIRTIO 1.2 §4.1.4.3
 * {@code struct virtio_pci_common_cfg}), little-endian. Fields from {@code queue_size} on are those of
 * the queue {@code queue_select} names.
 *
 * <pre>
 *  0               1               2               3
 *  0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7
 * +---------------------------------------------------------------+
 * |                device_feature_select (RW)                     | 0x00
 * +---------------------------------------------------------------+
 * |                device_feature (RO)                            | 0x04
 * +---------------------------------------------------------------+
 * |                driver_feature_select (RW)                     | 0x08
 * +---------------------------------------------------------------+
 * |                driver_feature (RW)                            | 0x0C
 * +-------------------------------+-------------------------------+
 * |    config_msix_vector (RW)    |       num_queues (RO)         | 0x10
 * +---------------+---------------+-------------------------------+
 * | device_status | config_gen    |      queue_select (RW)        | 0x14
 * +---------------+---------------+-------------------------------+
 * |       queue_size (RW)         |   queue_msix_vector (RW)      | 0x18
 * +-------------------------------+-------------------------------+
 * |      queue_enable (RW)        |    queue_notify_off (RO)      | 0x1C
 * +-------------------------------+-------------------------------+
 * |                queue_desc (RW, le64)                          | 0x20
 * +---------------------------------------------------------------+
 * |                queue_driver (RW, le64)                        | 0x28
 * +---------------------------------------------------------------+
 * |                queue_device (RW, le64)                        | 0x30
 * +-------------------------------+-------------------------------+
 * |   queue_notify_data (RO)      |      queue_reset (RW)         | 0x38
 * +-------------------------------+-------------------------------+
 * </pre>
 */
public final class CommonConfig {
    /** {@code device_feature_select}, le32. */
    public static final int DEVICE_FEATURE_SELECT = 0x00;
    /** {@code device_feature}, le32, read-only. */
    public static final int DEVICE_FEATURE = 0x04;
    /** {@code driver_feature_select}, le32. */
    public static final int DRIVER_FEATURE_SELECT = 0x08;
    /** {@code driver_feature}, le32. */
    public static final int DRIVER_FEATURE = 0x0C;
    /** {@code config_msix_vector}, le16. */
    public static final int CONFIG_MSIX_VECTOR = 0x10;
    /** {@code num_queues}, le16, read-only. */
    public static final int NUM_QUEUES = 0x12;
    /** {@code device_status}, u8. */
    public static final int DEVICE_STATUS = 0x14;
    /** {@code config_generation}, u8, read-only. */
    public static final int CONFIG_GENERATION = 0x15;
    /** {@code queue_select}, le16. */
    public static final int QUEUE_SELECT = 0x16;
    /** {@code queue_size}, le16. */
    public static final int QUEUE_SIZE = 0x18;
    /** {@code queue_msix_vector}, le16. */
    public static final int QUEUE_MSIX_VECTOR = 0x1A;
    /** {@code queue_enable}, le16. */
    public static final int QUEUE_ENABLE = 0x1C;
    /** {@code queue_notify_off}, le16, read-only. */
    public static final int QUEUE_NOTIFY_OFF = 0x1E;
    /** {@code queue_desc}, le64. */
    public static final int QUEUE_DESC = 0x20;
    /** {@code queue_driver}, le64. */
    public static final int QUEUE_DRIVER = 0x28;
    /** {@code queue_device}, le64. */
    public static final int QUEUE_DEVICE = 0x30;
    /** {@code queue_notify_data}, le16, read-only. */
    public static final int QUEUE_NOTIFY_DATA = 0x38;
    /** {@code queue_reset}, le16. */
    public static final int QUEUE_RESET = 0x3A;
    /** Length of the structure. */
    public static final int LENGTH = 0x3C;
    /** {@code VIRTIO_MSI_NO_VECTOR}: no MSI-X vector. */
    public static final int NO_VECTOR = 0xFFFF;

    private CommonConfig() {
    }

    /**
     * {@return the size in bytes of the field starting at {@code offset}, or 0 when no field starts there}
     *
     * @param offset an offset in the structure
     */
    public static int fieldSize(int offset) {
        return switch (offset) {
            case DEVICE_FEATURE_SELECT, DEVICE_FEATURE, DRIVER_FEATURE_SELECT, DRIVER_FEATURE -> 4;
            case CONFIG_MSIX_VECTOR, NUM_QUEUES, QUEUE_SELECT, QUEUE_SIZE, QUEUE_MSIX_VECTOR, QUEUE_ENABLE, QUEUE_NOTIFY_OFF,
                 QUEUE_NOTIFY_DATA, QUEUE_RESET -> 2;
            case DEVICE_STATUS, CONFIG_GENERATION -> 1;
            case QUEUE_DESC, QUEUE_DRIVER, QUEUE_DEVICE -> 8;
            default -> 0;
        };
    }
}
