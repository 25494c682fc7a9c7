/** Unix-socket message channels that carry file descriptors. */
package dev.outproc.core.transport;
