package dev.outproc.migration.stream;

/**
 * The head of an envelope section: a vendor-opaque blob labelled with who defined it and which schema version it
 * follows. The payload itself is read with {@link DeviceStateReader#readEnvelopePayload}.
 *
 * @param vendorId domain-rooted vendor id, e.g. {@code example.com/acme}
 * @param schemaVersion the vendor's schema version of the payload
 * @param payloadLength payload length in bytes
 */
public record Envelope(String vendorId, int schemaVersion, long payloadLength) {}
