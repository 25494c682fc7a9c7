package dev.outproc.vfio.server;

/**
 * What a device reaches of its client while attached: the DMA space the client mapped and the
 * interrupts it installed.
 *
 * @param dma the client's DMA space
 * @param interrupts the device's interrupts
 */
public record DeviceContext(DmaSpace dma, Interrupts interrupts) {
}
