/**
 * Compatibility check and handshake: descriptors, offer / accept / refuse messages (serializable to bytes so any
 * channel can carry them), structured refusal reasons and {@link dev.outproc.migration.handshake.MigrationSession}.
 */
package dev.outproc.migration.handshake;
