package dev.outproc.migration.handshake;

import java.io.IOException;
import java.nio.channels.ByteChannel;
import java.util.List;

/**
 * The orchestrator's side of the per-migration handshake (integration.md §7): relays between a source and a
 * destination endpoint, each reached over any byte channel (a Unix socket, a pipe to {@code ssh}), and reports the
 * outcome. The relay sees only public bytes: offer, answer, verdict. A Java VMM calls it directly; the
 * {@code migration relay} command runs it from a shell.
 */
public final class HandshakeRelay {
    private HandshakeRelay() {}

    /**
     * The outcome of a relayed handshake.
     *
     * @param agreed whether both sides agreed: the destination accepted and the source took the accept
     * @param accept the destination's accept, or null when it refused
     * @param reasons the destination's reasons when it refused, else empty
     * @param sourceResult the source's verdict, or null when the destination refused (the source then got the refusal)
     */
    public record Outcome(boolean agreed, MigrationAccept accept, List<Incompatibility> reasons, HandshakeCodec.Result sourceResult) {
        /** Canonical constructor: copies the list. */
        public Outcome {
            reasons = List.copyOf(reasons);
        }
    }

    /**
     * Runs one handshake between two endpoints.
     *
     * @param source channel to the source back-end's endpoint
     * @param destination channel to the destination back-end's endpoint
     * @return the outcome
     * @throws IOException if a channel fails or an endpoint sends something malformed
     */
    public static Outcome relay(ByteChannel source, ByteChannel destination) throws IOException {
        HandshakeCodec.writeMessage(source, HandshakeCodec.encodeBegin(HandshakeCodec.ROLE_SOURCE));
        byte[] offer = HandshakeCodec.readMessage(source);
        if (HandshakeCodec.typeOf(offer) != HandshakeCodec.TYPE_OFFER) {
            throw new HandshakeException("source endpoint sent message type " + HandshakeCodec.typeOf(offer) + " where an offer was expected");
        }
        HandshakeCodec.writeMessage(destination, HandshakeCodec.encodeBegin(HandshakeCodec.ROLE_DESTINATION));
        HandshakeCodec.writeMessage(destination, offer);
        byte[] answer = HandshakeCodec.readMessage(destination);
        MigrationAnswer decoded = HandshakeCodec.decodeAnswer(answer);
        HandshakeCodec.writeMessage(source, answer);
        HandshakeCodec.Result result = HandshakeCodec.decodeResult(HandshakeCodec.readMessage(source));
        return switch (decoded) {
            case MigrationAccept a -> new Outcome(result.agreed(), a, List.of(), result);
            case MigrationRefusal r -> new Outcome(false, null, r.reasons(), result);
        };
    }
}
