/**
 * Message I/O for vhost-user over a core {@link dev.outproc.core.transport.MessageChannel}: a reader
 * that frames, caps and validates inbound messages and owns the fds that come with them, and a writer
 * that encodes requests and replies into a reusable buffer and sends them with their fds.
 *
 * <p>Syntax only: what a message means for the connection (negotiated features, ring state) belongs to
 * the back-end and front-end built on top.
 */
package dev.outproc.vhost.connection;
