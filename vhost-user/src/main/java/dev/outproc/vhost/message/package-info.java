/**
 * The vhost-user wire format: the 12-byte header, every front-end request (1–44) and back-end request
 * (1–10) with its metadata, protocol and virtio feature bits, and a flyweight decoder and encoder for
 * every payload.
 *
 * <p>Authority: QEMU {@code docs/interop/vhost-user.rst}. All numbers are in the machine's native byte
 * order (section "Message Specification"); the layouts in {@link dev.outproc.vhost.message.WireLayout}
 * name that order. Codecs follow the Agrona/SBE style: a decoder or encoder holds only a segment and an
 * offset, {@code wrap(segment, offset)} returns {@code this}, and every payload class states its
 * {@code ENCODED_LENGTH} and {@code *_OFFSET} constants next to a drawing of its layout.
 *
 * <p>This package is the <em>syntax</em> layer: {@link dev.outproc.vhost.message.MessageValidator}
 * checks what can be checked from the bytes and the fd count alone (version, reserved bits, exact sizes,
 * fields that must be zero, fd counts). Whether a request is allowed by the negotiated features or the
 * connection's state is the back-end's or front-end's business.
 */
package dev.outproc.vhost.message;
