/**
 * A test kit for device authors: {@link dev.outproc.vhost.testkit.DeviceTestBench} serves a
 * {@link dev.outproc.core.virtio.VirtioDevice} over a real vhost-user socket to an in-process guest
 * (front-end, negotiation, shared memory), and {@link dev.outproc.vhost.testkit.TestQueue} posts
 * buffers, kicks and waits for them, so that a device's JUnit test is a few lines.
 */
package dev.outproc.vhost.testkit;
