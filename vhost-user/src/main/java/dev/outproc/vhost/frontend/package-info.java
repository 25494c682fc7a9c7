/**
 * A vhost-user front-end: {@link dev.outproc.vhost.frontend.VhostUserFrontend} drives any back-end's socket
 * request by request, as a VMM does; {@link dev.outproc.vhost.frontend.FrontendQueue} pairs a started ring
 * with core's driver-side queue. Every payload is written and read with the {@code dev.outproc.vhost.message}
 * flyweights.
 *
 * <p>Inside, the facade extends {@code FrontendConnection}, the package-private layer that owns the
 * {@code RequestChannel} (requests out, replies in, the REPLY_ACK policy) and the negotiation (features,
 * protocol features, owner, reset, status); the facade hands each other group of requests to a class of its
 * own over that channel: {@code MemoryTableRequests}, {@code RingRequests}, {@code IotlbRequests},
 * {@code ConfigRequests} and {@code StateRequests} (inflight log and device state); {@code BackendChannelReader}
 * opens the back-end channel and serves it on its own thread.
 */
package dev.outproc.vhost.frontend;
