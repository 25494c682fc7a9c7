/**
 * A vhost-user front-end: {@link dev.outproc.vhost.frontend.VhostUserFrontend} drives any back-end's socket
 * request by request, as a VMM does; {@link dev.outproc.vhost.frontend.FrontendQueue} pairs a started ring
 * with core's driver-side queue. Every payload is written and read with the {@code dev.outproc.vhost.message}
 * flyweights.
 */
package dev.outproc.vhost.frontend;
