package dev.outproc.examples.migration;

import dev.outproc.migration.handshake.HandshakeRelay;
import java.io.IOException;
import java.nio.channels.ByteChannel;

/**
 * The relay side of the compatibility handshake for a tool that moves the state afterwards itself (integration.md
 * §7), such as {@code vfio-user-client migrate}: the same relay and the same JSON outcome as {@code migration relay}.
 */
public final class HandshakeBeforeTransfer {
    private HandshakeBeforeTransfer() {}

    /**
     * Runs one handshake between two migration endpoints.
     *
     * @param source the source's endpoint ({@code unix:PATH}, {@code stdio} or {@code exec:COMMAND})
     * @param destination the destination's endpoint
     * @return the outcome: agreed, or the structured reasons of the refusal
     * @throws IOException when an endpoint cannot be reached or breaks the handshake
     */
    public static HandshakeRelay.Outcome relay(String source, String destination) throws IOException {
        try (ByteChannel s = HandshakeEndpointAddress.open(source); ByteChannel d = HandshakeEndpointAddress.open(destination)) {
            return HandshakeRelay.relay(s, d);
        }
    }

    /**
     * The outcome as one line of JSON, as {@code migration relay} prints it.
     *
     * @param outcome the outcome
     * @return the JSON text
     */
    public static String json(HandshakeRelay.Outcome outcome) {
        return HandshakeCommands.json(outcome);
    }
}
