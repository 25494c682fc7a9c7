/** The vhost-user protocol. */
package dev.outproc.vhost;
