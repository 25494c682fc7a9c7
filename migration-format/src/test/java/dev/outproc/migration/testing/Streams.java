package dev.outproc.migration.testing;

import dev.outproc.migration.handshake.HandshakeAgreement;
import dev.outproc.migration.stream.DeviceStateReader;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.channels.Channels;
import java.util.Set;

/** Helpers for tests that read streams from bytes. */
public final class Streams {
    private Streams() {}

    /**
     * Reads a committed golden file.
     *
     * @param name file name under {@code golden/}
     * @return its bytes
     */
    public static byte[] golden(String name) {
        try (InputStream in = Streams.class.getResourceAsStream("/golden/" + name)) {
            if (in == null) {
                throw new IllegalStateException("missing golden file " + name);
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Opens a strict reader over bytes.
     *
     * @param b stream bytes
     * @param a agreement
     * @return reader
     * @throws IOException if the header is refused
     */
    public static DeviceStateReader open(byte[] b, HandshakeAgreement a) throws IOException {
        return DeviceStateReader.open(Channels.newChannel(new ByteArrayInputStream(b)), a);
    }

    /**
     * Opens an inspection reader over bytes.
     *
     * @param b stream bytes
     * @return reader
     * @throws IOException if the header is malformed
     */
    public static DeviceStateReader inspect(byte[] b) throws IOException {
        return DeviceStateReader.openForInspection(Channels.newChannel(new ByteArrayInputStream(b)), null, Set.of());
    }
}
