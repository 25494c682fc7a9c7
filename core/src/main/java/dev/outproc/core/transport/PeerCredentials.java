package dev.outproc.core.transport;

/**
 * The credentials of the process at the other end of a Unix socket ({@code SO_PEERCRED}), for an allow-list.
 *
 * @param pid the peer's process id
 * @param uid the peer's user id
 * @param gid the peer's group id
 */
public record PeerCredentials(long pid, long uid, long gid) {
}
