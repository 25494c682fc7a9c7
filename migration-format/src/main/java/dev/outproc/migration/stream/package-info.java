/**
 * The device-state stream: {@link dev.outproc.migration.stream.DeviceStateWriter} and
 * {@link dev.outproc.migration.stream.DeviceStateReader} with typed fields in versioned sections, must-understand and
 * skippable sections, vendor envelopes, per-section digests, a transcript, an optional MAC and an optional Ed25519
 * signature. The byte layout is specified in {@code migration-format/docs/stream-format.md}.
 */
package dev.outproc.migration.stream;
