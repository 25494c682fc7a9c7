package dev.outproc.core.virtio;

/** Device status bits (VIRTIO 1.3 §2.1 "Device Status Field"). */
public final class VirtioStatus {
    /** 1: the guest found the device. */
    public static final int ACKNOWLEDGE = 1;
    /** 2: the guest has a driver for it. */
    public static final int DRIVER = 2;
    /** 4: the driver is ready. */
    public static final int DRIVER_OK = 4;
    /** 8: the driver accepted the features. */
    public static final int FEATURES_OK = 8;
    /** 64: the device hit an error it cannot recover from without a reset. */
    public static final int DEVICE_NEEDS_RESET = 64;
    /** 128: the driver gave up on the device. */
    public static final int FAILED = 128;

    private VirtioStatus() {
    }
}
