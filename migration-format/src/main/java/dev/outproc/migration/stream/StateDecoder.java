package dev.outproc.migration.stream;

import java.io.IOException;

/**
 * Reads a device's sections into staged state; used with {@link DeviceStateReader#readVerified}, which returns the
 * staged state only after the trailer verified.
 *
 * @param <T> the staged state
 */
@FunctionalInterface
public interface StateDecoder<T> {
    /**
     * Reads sections until {@link DeviceStateReader#nextSection()} returns null (or stops early; the remaining
     * sections are then skipped, or refused if must-understand).
     *
     * @param reader the reader
     * @return the staged state
     * @throws IOException if the stream is refused
     */
    T decode(DeviceStateReader reader) throws IOException;
}
