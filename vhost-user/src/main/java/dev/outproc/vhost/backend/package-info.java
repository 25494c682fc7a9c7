/**
 * The vhost-user back-end: serves a {@link dev.outproc.core.virtio.VirtioDevice} to a front-end (a VMM
 * such as QEMU, DPDK's virtio-user, or {@link dev.outproc.vhost.frontend.VhostUserFrontend}).
 *
 * <p>A device author meets {@link dev.outproc.vhost.backend.VhostUserServer} (listen, {@code --fd}),
 * {@link dev.outproc.vhost.backend.VhostUserBackend} (the device's rings and workers, one connection at a
 * time), {@link dev.outproc.vhost.backend.Vring} (the queue handed to the device) and, for the
 * vhost-only requests, {@link dev.outproc.vhost.backend.VhostUserDevice}.
 *
 * <p>Inside, each front-end connection gets a session that owns everything it sets up and is dropped
 * with it. Its dispatcher decodes every payload with the {@code dev.outproc.vhost.message} flyweights and
 * hands it to the handler of its concern, one class each: memory table, dirty log, IOTLB space, ring
 * control, inflight recovery, back-end channel, device state, configuration.
 */
package dev.outproc.vhost.backend;
