package dev.outproc.migration.stream;

import java.io.IOException;

/** Writes a device's sections; used with {@link DeviceStateWriter#write}. */
@FunctionalInterface
public interface StateEncoder {
    /**
     * Writes the sections (not the trailer).
     *
     * @param writer the writer, whose {@link DeviceStateWriter#formatVersion()} says which version to write
     * @throws IOException if writing fails
     */
    void encode(DeviceStateWriter writer) throws IOException;
}
