package dev.outproc.vfio.virtio;

import dev.outproc.core.virtio.VirtioFeature;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * The device-wide virtio registers of a {@link VirtioPciDevice} (VIRTIO 1.2 §4.1.4.3): what the driver programs
 * through the common configuration besides the per-queue registers ({@link PciQueue}), the ISR and the configuration
 * generation. It is the transport's register file, shared by the classes that serve the structures BAR, run the
 * queues and migrate the transport; the plain fields are guarded by this object's monitor
 * ({@code synchronized (registers)}), the volatile and atomic ones are read without it.
 */
final class TransportRegisters {
    /** The queues the device has (the MSI-X table holds one more vector, for configuration changes). */
    final int queueCount;
    /** ISR status bits not read yet (VIRTIO 1.2 §4.1.4.5). */
    final AtomicInteger isr = new AtomicInteger();
    /** {@code config_generation}: moves on each configuration change. */
    final AtomicInteger configGeneration = new AtomicInteger();

    int deviceFeatureSelect;
    int driverFeatureSelect;
    long driverFeatures;
    volatile int configMsixVector = CommonConfig.NO_VECTOR;
    volatile int status;
    int queueSelect;

    TransportRegisters(int queueCount) {
        this.queueCount = queueCount;
    }

    /** Returns every register to its reset value but the configuration generation (monitor held). */
    void reset() {
        deviceFeatureSelect = 0;
        driverFeatureSelect = 0;
        driverFeatures = 0;
        configMsixVector = CommonConfig.NO_VECTOR;
        status = 0;
        queueSelect = 0;
        isr.set(0);
    }

    /** {@return whether the driver's features select packed rings} */
    boolean packed() {
        return packed(driverFeatures);
    }

    /**
     * {@return whether these features select packed rings}
     *
     * @param features driver features
     */
    static boolean packed(long features) {
        return (features & VirtioFeature.RING_PACKED.mask()) != 0;
    }

    /**
     * {@return the vector, or NO_VECTOR when the MSI-X table has no such entry (VIRTIO 1.2 §4.1.5.1.2)}
     *
     * @param value written
     */
    int vector(int value) {
        int v = value & 0xFFFF;
        return v <= queueCount ? v : CommonConfig.NO_VECTOR;
    }
}
