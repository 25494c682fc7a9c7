package dev.outproc.migration.fuzz;

import static org.junit.jupiter.api.Assertions.fail;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.outproc.migration.handshake.HandshakeCodec;
import dev.outproc.migration.handshake.HandshakeException;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;

/**
 * Arbitrary bytes on the handshake socket: the framing reader ({@code readMessage}: magic, announced length,
 * body) and then both message decoders on whatever it returns, message after message until the bytes run out.
 * Only {@link HandshakeException} may come out, and a message the framing accepted must be no larger than the
 * cap it enforces.
 */
class HandshakeFramingFuzzTest {

    @FuzzTest(maxDuration = "30s")
    void readArbitraryHandshakeStream(byte[] data) {
        ReadableByteChannel ch = Channels.newChannel(new ByteArrayInputStream(data));
        try {
            for (int i = 0; i < 8; i++) {
                byte[] m = HandshakeCodec.readMessage(ch);
                if (m.length > HandshakeCodec.MAX_MESSAGE_BYTES) {
                    fail("readMessage returned " + m.length + " bytes, over its cap " + HandshakeCodec.MAX_MESSAGE_BYTES);
                }
                decodeBoth(m);
            }
        } catch (HandshakeException expected) {
            // a typed refusal, including a stream that ends inside a message
        } catch (IOException | RuntimeException e) {
            fail("handshake framing threw " + e.getClass().getName() + ": " + e.getMessage(), e);
        }
    }

    private static void decodeBoth(byte[] m) {
        try {
            HandshakeCodec.decodeOffer(m);
        } catch (HandshakeException expected) {
            // typed
        }
        try {
            HandshakeCodec.decodeAnswer(m);
        } catch (HandshakeException expected) {
            // typed
        }
    }
}
