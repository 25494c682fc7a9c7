/**
 * The transport-neutral virtio device model: {@link dev.outproc.core.virtio.VirtioDevice} is what a
 * device author implements, {@link dev.outproc.core.virtio.VirtioQueue} the queue handle the device
 * uses. vhost-user serves such a device over a socket and shared memory; vfio-user serves it as a
 * virtio-pci device. Device logic written against these types runs under either transport.
 */
package dev.outproc.core.virtio;
