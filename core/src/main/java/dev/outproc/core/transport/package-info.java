/**
 * Unix-socket message channels that carry file descriptors, and who may open them.
 *
 * <p>{@link dev.outproc.core.transport.UnixListener} creates its socket file {@code 0600} unless told
 * otherwise, never takes over a path where a live listener answers, and checks every accepted peer
 * against a {@link dev.outproc.core.transport.PeerAllowList} ({@code SO_PEERCRED} uids and gids) before
 * handing out the connection; a refused peer is logged and closed unread.
 * {@link dev.outproc.core.transport.MessageChannel} moves bytes and fds; a read timeout
 * ({@code setReadTimeoutMillis}) bounds how long a silent peer can hold a connection.
 */
package dev.outproc.core.transport;
