package dev.outproc.migration.handshake;

import java.io.IOException;
import java.nio.channels.ByteChannel;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * A back-end's side of the per-migration handshake over a byte channel (integration.md §7): the connection to its
 * migration endpoint (for example {@code --migration-socket PATH}). The relay opens with a begin message naming the
 * role; as source the back-end sends its offer, reads the answer and reports its verdict; as destination it reads
 * the offer and sends its answer. Nothing else crosses, and no state moves on this channel.
 * {@snippet :
 * Optional<HandshakeEndpoint.Agreed> agreed = HandshakeEndpoint.serve(connection,
 *         () -> MigrationSession.source(descriptor, registry, true, random).signWith(key),
 *         () -> MigrationSession.destination(descriptor, new CompatibilityChecker(registry), true, random));
 * agreed.ifPresent(a -> device.migrationAgreed(a.agreement()));   // governs the next SET_DEVICE_STATE_FD
 * }
 */
public final class HandshakeEndpoint {
    private HandshakeEndpoint() {}

    /**
     * What one served handshake agreed.
     *
     * @param role {@link HandshakeCodec#ROLE_SOURCE} (the agreement governs the next save) or
     *        {@link HandshakeCodec#ROLE_DESTINATION} (the next load)
     * @param agreement the agreement
     */
    public record Agreed(int role, HandshakeAgreement agreement) {
        /** @return whether this back-end is the source (it saves) */
        public boolean source() {
            return role == HandshakeCodec.ROLE_SOURCE;
        }
    }

    /**
     * Serves one handshake on a connection.
     *
     * @param channel blocking connection from the relay
     * @param source creates this back-end's source session when the relay asks for that role
     * @param destination creates this back-end's destination session when the relay asks for that role
     * @return the role and agreement when this side agreed, empty when the migration was refused (the reasons went to the relay)
     * @throws IOException if the channel fails or the relay sends something malformed
     */
    public static Optional<Agreed> serve(ByteChannel channel, Supplier<MigrationSession.Source> source,
            Supplier<MigrationSession.Destination> destination) throws IOException {
        return serve(channel, source, destination, agreed -> { });
    }

    /**
     * Serves one handshake on a connection and hands the agreement to the device <em>before</em> the relay learns of
     * it: once the relay reports the agreement, the device already holds it, so a transfer the orchestrator starts at
     * once finds it.
     *
     * @param channel blocking connection from the relay
     * @param source creates this back-end's source session when the relay asks for that role
     * @param destination creates this back-end's destination session when the relay asks for that role
     * @param keep receives the agreement before this side's result (source) or answer (destination) is sent
     * @return the role and agreement when this side agreed, empty when the migration was refused (the reasons went to the relay)
     * @throws IOException if the channel fails or the relay sends something malformed
     */
    public static Optional<Agreed> serve(ByteChannel channel, Supplier<MigrationSession.Source> source,
            Supplier<MigrationSession.Destination> destination, Consumer<Agreed> keep) throws IOException {
        int role = HandshakeCodec.decodeBegin(HandshakeCodec.readMessage(channel));
        if (role == HandshakeCodec.ROLE_SOURCE) {
            MigrationSession.Source src = source.get();
            HandshakeCodec.writeMessage(channel, src.offer());
            byte[] answer = HandshakeCodec.readMessage(channel);
            try {
                HandshakeAgreement a = src.complete(answer);
                Agreed agreed = new Agreed(role, a);
                keep.accept(agreed);
                HandshakeCodec.writeMessage(channel, HandshakeCodec.encodeResult(
                        new HandshakeCodec.Result(true, "", a.formatVersion(), a.handshakeHash())));
                return Optional.of(agreed);
            } catch (HandshakeException e) {
                // A refusal, or an accept this source cannot honour: the relay learns why; nothing is agreed.
                HandshakeCodec.writeMessage(channel, HandshakeCodec.encodeResult(new HandshakeCodec.Result(false, e.getMessage(), 0, new byte[0])));
                return Optional.empty();
            }
        }
        MigrationSession.Answer answer = destination.get().answer(HandshakeCodec.readMessage(channel));
        Optional<Agreed> agreed = Optional.ofNullable(answer.agreement()).map(a -> new Agreed(role, a));
        agreed.ifPresent(keep);
        HandshakeCodec.writeMessage(channel, answer.bytes());
        return agreed;
    }
}
