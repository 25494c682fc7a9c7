package dev.outproc.vfio.virtio;

import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * The state of a {@link VirtioPciDevice}'s transport at a stopped point: what the driver programmed through the
 * common configuration, the ring positions of every queue, the ISR, the configuration generation and the MSI-X
 * state a client does not carry itself. The device's own state (a virtio-blk's geometry, its statistics) travels
 * next to it in the same migration-format stream.
 *
 * <p>In a migration-format stream it is one section, {@code virtio_pci} (migration-format/docs/integration.md,
 * "virtio over PCI"); the examples' {@code VirtioPciStateSection} writes and reads it, so that this library
 * carries no stream format of its own. Equality compares the MSI-X table and pending bits by content.
 *
 * @param deviceFeatureSelect {@code device_feature_select}
 * @param driverFeatureSelect {@code driver_feature_select}
 * @param driverFeatures the features the driver wrote (negotiated once FEATURES_OK is set)
 * @param deviceStatus {@code device_status}
 * @param queueSelect {@code queue_select}
 * @param configMsixVector {@code config_msix_vector}
 * @param configGeneration {@code config_generation} (8 bits)
 * @param isr the ISR status bits not read yet
 * @param msixControl the MSI-X capability's message control word (enable, function mask)
 * @param msixTable the MSI-X table as BAR reads return it (16 bytes per vector: address, data, vector control)
 * @param queues one record per queue
 * @param msixPending the MSI-X pending-bit array as BAR reads return it (8 bytes per 64 vectors, vector {@code v} in
 *        bit {@code v % 64} of little-endian word {@code v / 64}): interrupts raised while their vector was masked,
 *        delivered when the driver unmasks it; empty for a state that does not carry it, which means none pending
 */
public record VirtioPciState(int deviceFeatureSelect, int driverFeatureSelect, long driverFeatures, int deviceStatus,
                             int queueSelect, int configMsixVector, int configGeneration, int isr, int msixControl,
                             byte[] msixTable, List<Queue> queues, byte[] msixPending) {
    /** Version of the {@code virtio_pci} section. */
    public static final int SECTION_VERSION = 1;

    /** Copies the queue list, the table and the pending bits. */
    public VirtioPciState {
        queues = List.copyOf(queues);
        msixTable = msixTable.clone();
        msixPending = msixPending.clone();
    }

    /**
     * A state without pending bits (none pending), as saved before the pending-bit array was carried.
     *
     * @param deviceFeatureSelect {@code device_feature_select}
     * @param driverFeatureSelect {@code driver_feature_select}
     * @param driverFeatures the features the driver wrote
     * @param deviceStatus {@code device_status}
     * @param queueSelect {@code queue_select}
     * @param configMsixVector {@code config_msix_vector}
     * @param configGeneration {@code config_generation}
     * @param isr the ISR status bits not read yet
     * @param msixControl the MSI-X message control word
     * @param msixTable the MSI-X table
     * @param queues one record per queue
     */
    public VirtioPciState(int deviceFeatureSelect, int driverFeatureSelect, long driverFeatures, int deviceStatus,
                          int queueSelect, int configMsixVector, int configGeneration, int isr, int msixControl,
                          byte[] msixTable, List<Queue> queues) {
        this(deviceFeatureSelect, driverFeatureSelect, driverFeatures, deviceStatus, queueSelect, configMsixVector,
                configGeneration, isr, msixControl, msixTable, queues, new byte[0]);
    }

    /** {@return a copy of the MSI-X table} */
    @Override
    public byte[] msixTable() {
        return msixTable.clone();
    }

    /** {@return a copy of the MSI-X pending-bit array (empty: none pending)} */
    @Override
    public byte[] msixPending() {
        return msixPending.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof VirtioPciState s && deviceFeatureSelect == s.deviceFeatureSelect
                && driverFeatureSelect == s.driverFeatureSelect && driverFeatures == s.driverFeatures
                && deviceStatus == s.deviceStatus && queueSelect == s.queueSelect && configMsixVector == s.configMsixVector
                && configGeneration == s.configGeneration && isr == s.isr && msixControl == s.msixControl
                && Arrays.equals(msixTable, s.msixTable) && queues.equals(s.queues) && Arrays.equals(msixPending, s.msixPending);
    }

    @Override
    public int hashCode() {
        return Objects.hash(deviceFeatureSelect, driverFeatureSelect, driverFeatures, deviceStatus, queueSelect,
                configMsixVector, configGeneration, isr, msixControl, Arrays.hashCode(msixTable), queues,
                Arrays.hashCode(msixPending));
    }

    @Override
    public String toString() {
        return "VirtioPciState[status=0x" + Integer.toHexString(deviceStatus) + ", driverFeatures=0x"
                + Long.toHexString(driverFeatures) + ", queues=" + queues + "]";
    }

    /**
     * One queue's registers and ring position.
     *
     * @param index the queue
     * @param size {@code queue_size}
     * @param enabled {@code queue_enable}
     * @param msixVector {@code queue_msix_vector}
     * @param descAddr {@code queue_desc}
     * @param driverAddr {@code queue_driver}
     * @param deviceAddr {@code queue_device}
     * @param running whether the ring ran (the driver set DRIVER_OK with the queue enabled); the positions below
     *        matter only then
     * @param nextAvail split: the next avail index (16-bit, free running); packed: the next slot to read
     * @param nextUsed split: the next used index; packed: the next slot to write
     * @param availWrap packed: the device's avail wrap counter
     * @param usedWrap packed: the device's used wrap counter
     */
    public record Queue(int index, int size, boolean enabled, int msixVector, long descAddr, long driverAddr,
                        long deviceAddr, boolean running, int nextAvail, int nextUsed, boolean availWrap, boolean usedWrap) {
    }
}
