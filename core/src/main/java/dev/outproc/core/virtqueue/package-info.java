/**
 * Split and packed virtqueues (VIRTIO 1.x §2.7, §2.8), device side and driver side.
 */
package dev.outproc.core.virtqueue;
