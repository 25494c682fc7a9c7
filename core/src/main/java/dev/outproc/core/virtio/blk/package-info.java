/**
 * virtio-blk (VIRTIO 1.2 §5.2) as both sides need it, independent of the transport: the spec's
 * constants and layouts ({@link dev.outproc.core.virtio.blk.VirtioBlk}) and the driver's request logic
 * over a driver-side queue ({@link dev.outproc.core.virtio.blk.BlkRequestDriver}).
 */
package dev.outproc.core.virtio.blk;
