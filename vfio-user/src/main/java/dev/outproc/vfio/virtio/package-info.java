/**
 * virtio over vfio-user: {@link dev.outproc.vfio.virtio.VirtioPciDevice} serves any transport-neutral
 * {@link dev.outproc.core.virtio.VirtioDevice} as a virtio 1.x modern PCI function (VIRTIO 1.2 §4.1):
 * the virtio structures in a BAR described by vendor-specific capabilities, MSI-X, and the queues run by
 * core's virtqueues over the client's DMA memory.
 */
package dev.outproc.vfio.virtio;
