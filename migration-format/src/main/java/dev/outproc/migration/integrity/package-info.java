/**
 * Keys for authenticity: Ed25519 signing and verifying keys (BouncyCastle), used for signed registry entries and
 * signed stream trailers. Digests, the transcript and the MAC are described in the format spec.
 */
package dev.outproc.migration.integrity;
