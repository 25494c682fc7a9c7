/**
 * A vhost-user front-end: {@link dev.outproc.vhost.frontend.VhostUserFrontend} drives any back-end's socket
 * request by request, as a VMM does; {@link dev.outproc.vhost.frontend.FrontendQueue} pairs a started ring
 * with core's driver-side queue. Every payload is written and read with the {@code dev.outproc.vhost.message}
 * flyweights.
 *
 * <p>Inside, the facade hands each group of requests to a class of its own over one
 * {@code RequestChannel} (requests out, replies in, the REPLY_ACK policy): {@code MemoryTableRequests},
 * {@code RingRequests}, {@code IotlbRequests}, {@code ConfigRequests} and {@code StateRequests} (inflight
 * log and device state); {@code BackendChannelReader} serves the back-end channel on its own thread.
 */
package dev.outproc.vhost.frontend;
