package dev.outproc.migration.fuzz;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.fail;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.outproc.migration.handshake.CompatibilityChecker;
import dev.outproc.migration.handshake.DeviceDescriptor;
import dev.outproc.migration.handshake.HandshakeCodec;
import dev.outproc.migration.handshake.HandshakeException;
import dev.outproc.migration.handshake.MigrationSession;
import dev.outproc.migration.model.Registry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.security.SecureRandom;
import java.util.List;
import java.util.Map;

/**
 * Arbitrary bytes to the handshake decoders and to a destination's {@code answer}: decoders may only throw
 * {@link HandshakeException}; a destination never throws and answers garbage with a refusal. A source must reject
 * any answer that was not made for its offer.
 */
class HandshakeDecoderFuzzTest {
    private static final Registry REGISTRY;

    static {
        try {
            REGISTRY = Registry.builtin();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static final DeviceDescriptor LOCAL = new DeviceDescriptor("outproc.dev/example/counter", "outproc.dev/example/counter-v2",
            "outproc.dev/example/counter/state", Map.of(), List.of(1, 2), List.of(1, 2));

    @FuzzTest(maxDuration = "30s")
    void decodeArbitraryMessages(byte[] data) {
        try {
            HandshakeCodec.decodeOffer(data);
        } catch (HandshakeException expected) {
            // typed
        } catch (RuntimeException e) {
            fail("offer decoder threw " + e.getClass().getName() + ": " + e.getMessage(), e);
        }
        try {
            HandshakeCodec.decodeAnswer(data);
        } catch (HandshakeException expected) {
            // typed
        } catch (RuntimeException e) {
            fail("answer decoder threw " + e.getClass().getName() + ": " + e.getMessage(), e);
        }
        try {
            HandshakeCodec.decodeBegin(data);
        } catch (HandshakeException expected) {
            // typed
        } catch (RuntimeException e) {
            fail("begin decoder threw " + e.getClass().getName() + ": " + e.getMessage(), e);
        }
        try {
            HandshakeCodec.decodeResult(data);
        } catch (HandshakeException expected) {
            // typed
        } catch (RuntimeException e) {
            fail("result decoder threw " + e.getClass().getName() + ": " + e.getMessage(), e);
        }
        MigrationSession.Answer a = MigrationSession.destination(LOCAL, new CompatibilityChecker(REGISTRY), false, new SecureRandom()).answer(data);
        try {
            HandshakeCodec.decodeAnswer(a.bytes());
        } catch (HandshakeException e) {
            fail("destination produced an undecodable answer: " + e.getMessage(), e);
        }
        MigrationSession.Source src = MigrationSession.source(LOCAL, REGISTRY, true, new SecureRandom());
        try {
            src.complete(data);
            fail("a source accepted an answer that was not made for its offer");
        } catch (HandshakeException expected) {
            // typed: the nonce cannot match a fresh random one
        } catch (RuntimeException e) {
            fail("source threw " + e.getClass().getName() + ": " + e.getMessage(), e);
        }
        assertFalse(data.length == 0 && a.accepted(), "an empty offer must be refused");
    }
}
