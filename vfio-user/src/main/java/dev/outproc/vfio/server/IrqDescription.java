package dev.outproc.vfio.server;

/**
 * What {@code VFIO_USER_DEVICE_GET_IRQ_INFO} reports about one IRQ index.
 *
 * @param count how many interrupts of this type (0: none)
 * @param flags the {@code VFIO_IRQ_INFO_*} flags of {@link dev.outproc.vfio.message.IrqInfo}
 */
public record IrqDescription(int count, int flags) {
}
