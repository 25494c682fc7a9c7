package dev.outproc.core.virtio;

/** Virtio device type numbers (VIRTIO 1.3 §5 "Device Types"); virtio-pci's device id is 0x1040 plus the type. */
public final class VirtioDeviceType {
    /** 1: network card. */
    public static final int NET = 1;
    /** 2: block device. */
    public static final int BLOCK = 2;
    /** 3: console. */
    public static final int CONSOLE = 3;
    /** 4: entropy source. */
    public static final int ENTROPY = 4;
    /** 8: SCSI host. */
    public static final int SCSI = 8;
    /** 9: 9P transport. */
    public static final int NINEP = 9;
    /** 16: GPU. */
    public static final int GPU = 16;
    /** 18: input. */
    public static final int INPUT = 18;
    /** 19: socket. */
    public static final int VSOCK = 19;
    /** 26: file system. */
    public static final int FS = 26;
    /** 34: I2C adapter. */
    public static final int I2C = 34;
    /** 41: GPIO. */
    public static final int GPIO = 41;

    private VirtioDeviceType() {
    }
}
