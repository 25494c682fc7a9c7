package dev.outproc.vfio.server;

import dev.outproc.vfio.message.VfioUserProtocolException;

import java.lang.foreign.MemorySegment;

/**
 * A device served over vfio-user: its regions, its IRQ indexes, reset and, optionally, migration. Device
 * authors implement it with their PCI config space in region 7 ({@code VFIO_PCI_CONFIG_REGION_INDEX}).
 *
 * <p>Region accesses arrive on the server's connection thread; a device that runs threads of its own
 * reaches client memory and interrupts through the {@link DeviceContext} it gets in {@link #attach}.
 * Accesses from a device must throw {@link VfioUserProtocolException} (with an errno) for anything they
 * refuse; the client gets the errno.
 */
public interface VfioUserDevice {
    /** {@return the number of regions (VFIO_PCI_NUM_REGIONS = 9 for PCI)} */
    int regionCount();

    /**
     * Describes a region.
     *
     * @param index the region index, below {@link #regionCount()}
     * @return its description ({@link RegionDescription#ABSENT} for an empty slot)
     */
    RegionDescription region(int index);

    /**
     * Reads bytes of a region. The server has checked the index, the bounds and the READ flag.
     *
     * @param index the region
     * @param offset the offset in the region
     * @param destination where the bytes go (its size is the count)
     * @throws VfioUserProtocolException when the device refuses the access
     */
    void regionRead(int index, long offset, MemorySegment destination) throws VfioUserProtocolException;

    /**
     * Writes bytes of a region. The server has checked the index, the bounds and the WRITE flag.
     *
     * @param index the region
     * @param offset the offset in the region
     * @param source the bytes (its size is the count)
     * @throws VfioUserProtocolException when the device refuses the access
     */
    void regionWrite(int index, long offset, MemorySegment source) throws VfioUserProtocolException;

    /** {@return the number of IRQ indexes (VFIO_PCI_NUM_IRQS = 5 for PCI: INTx, MSI, MSI-X, ERR, REQ)} */
    int irqIndexCount();

    /**
     * Describes an IRQ index.
     *
     * @param index the IRQ index
     * @return its description
     */
    IrqDescription irq(int index);

    /** Resets the device to its power-on state (VFIO_USER_DEVICE_RESET, and when a client goes). */
    void reset();

    /**
     * Called when a client has negotiated: the context reaches its DMA memory and interrupts until
     * {@link #detach()}.
     *
     * @param context the client's DMA space and interrupts
     */
    default void attach(DeviceContext context) {
    }

    /** Called when the client goes, before the reset; the device must stop using the context. */
    default void detach() {
    }

    /** {@return whether this is a PCI device (VFIO_DEVICE_FLAGS_PCI)} */
    default boolean isPci() {
        return true;
    }

    /** {@return the migration callbacks, or {@code null} when the device cannot migrate} */
    default MigrationHandler migration() {
        return null;
    }
}
