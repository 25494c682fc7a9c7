package dev.outproc.migration.handshake;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.outproc.migration.integrity.SigningKey;
import dev.outproc.migration.model.Registry;
import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.DeviceStateWriter;
import dev.outproc.migration.stream.StreamIntegrityException;
import dev.outproc.migration.testing.CounterState;
import dev.outproc.migration.testing.CounterV1;
import dev.outproc.migration.testing.CounterV2;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.security.SecureRandom;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The handshake end to end: offer, accept or refuse, then the stream bound to the handshake. */
class MigrationSessionTest {
    private static final SecureRandom RANDOM = new SecureRandom();

    private static byte[] save(HandshakeAgreement a, CounterState s, boolean v2) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (DeviceStateWriter w = DeviceStateWriter.open(out, a)) {
            if (v2) {
                CounterV2.save(s, w);
            } else {
                CounterV1.save(s, w);
            }
        }
        return out.toByteArray();
    }

    @Test
    void v2SourceToV1DestinationShouldDowngradeWithMacAndLoad() throws IOException {
        Registry reg = Registry.builtin();
        MigrationSession.Source src = MigrationSession.source(CompatibilityCheckerTest.descriptor("counter-source-v2.json"), reg, true, RANDOM);
        MigrationSession.Destination dst = MigrationSession.destination(CompatibilityCheckerTest.descriptor("counter-dest-v1.json"),
                new CompatibilityChecker(reg), true, RANDOM);
        MigrationSession.Answer answer = dst.answer(src.offer());
        assertTrue(answer.accepted(), answer.reasons().toString());
        HandshakeAgreement sa = src.complete(answer.bytes());
        HandshakeAgreement da = answer.agreement();
        assertEquals(1, sa.formatVersion());
        assertArrayEquals(sa.macKey(), da.macKey(), "both sides derive the same MAC key");
        assertArrayEquals(sa.handshakeHash(), da.handshakeHash());
        assertNotNull(sa.macKey());

        byte[] stream = save(sa, CounterState.sample(), true);
        CounterState loaded = CounterV1.load(DeviceStateReader.open(new ByteArrayInputStream(stream), da));
        assertEquals(CounterState.sample().asV1(), loaded);
    }

    @Test
    void streamOfOneMigrationShouldBeRefusedByTheNextOne() throws IOException {
        Registry reg = Registry.builtin();
        DeviceDescriptor s = CompatibilityCheckerTest.descriptor("counter-source-v2.json");
        DeviceDescriptor d = CompatibilityCheckerTest.descriptor("counter-dest-v1.json");
        MigrationSession.Source first = MigrationSession.source(s, reg, true, RANDOM);
        MigrationSession.Answer a1 = MigrationSession.destination(d, new CompatibilityChecker(reg), true, RANDOM).answer(first.offer());
        byte[] stream = save(first.complete(a1.bytes()), CounterState.sample(), true);

        MigrationSession.Source second = MigrationSession.source(s, reg, true, RANDOM);
        MigrationSession.Answer a2 = MigrationSession.destination(d, new CompatibilityChecker(reg), true, RANDOM).answer(second.offer());
        StreamIntegrityException e = assertThrows(StreamIntegrityException.class,
                () -> CounterV1.load(DeviceStateReader.open(new ByteArrayInputStream(stream), a2.agreement())));
        assertTrue(e.getMessage().contains("replayed"), e.getMessage());
    }

    @Test
    void incompatibleDestinationShouldRefuseBeforeAnyStateMoves() throws IOException {
        Registry reg = Registry.builtin();
        MigrationSession.Source src = MigrationSession.source(CompatibilityCheckerTest.descriptor("blk-source.json"), reg, false, RANDOM);
        MigrationSession.Answer answer = MigrationSession.destination(CompatibilityCheckerTest.descriptor("blk-dest-incompatible.json"),
                new CompatibilityChecker(reg), false, RANDOM).answer(src.offer());
        assertFalse(answer.accepted());
        assertNull(answer.agreement());
        MigrationRefusedException e = assertThrows(MigrationRefusedException.class, () -> src.complete(answer.bytes()));
        assertEquals(answer.reasons(), e.reasons(), "reasons survive the byte form");
        assertTrue(e.reasons().stream().anyMatch(r -> r.code() == ReasonCode.NO_COMMON_VERSION));
    }

    @Test
    void destinationRequiringMacShouldRefuseOfferWithoutKeyMaterial() throws IOException {
        Registry reg = Registry.builtin();
        MigrationSession.Source src = MigrationSession.source(CompatibilityCheckerTest.descriptor("blk-source.json"), reg, false, RANDOM);
        MigrationSession.Answer answer = MigrationSession.destination(CompatibilityCheckerTest.descriptor("blk-dest-memory.json"),
                new CompatibilityChecker(reg), true, RANDOM).answer(src.offer());
        assertEquals(List.of(ReasonCode.MAC_REQUIRED), answer.reasons().stream().map(Incompatibility::code).toList());
    }

    @Test
    void malformedOfferShouldBeAnsweredWithAReason() throws IOException {
        Registry reg = Registry.builtin();
        MigrationSession.Answer answer = MigrationSession.destination(CompatibilityCheckerTest.descriptor("blk-dest-memory.json"),
                new CompatibilityChecker(reg), false, RANDOM).answer(new byte[] {1, 2, 3});
        assertEquals(ReasonCode.MALFORMED_OFFER, answer.reasons().getFirst().code());
        MigrationAnswer decoded = HandshakeCodec.decodeAnswer(answer.bytes());
        assertTrue(decoded instanceof MigrationRefusal);
    }

    @Test
    void answerForAnotherOfferShouldBeRejectedBySource() throws IOException {
        Registry reg = Registry.builtin();
        DeviceDescriptor s = CompatibilityCheckerTest.descriptor("blk-source.json");
        DeviceDescriptor d = CompatibilityCheckerTest.descriptor("blk-dest-memory.json");
        MigrationSession.Source one = MigrationSession.source(s, reg, false, RANDOM);
        MigrationSession.Source two = MigrationSession.source(s, reg, false, RANDOM);
        MigrationSession.Answer forTwo = MigrationSession.destination(d, new CompatibilityChecker(reg), false, RANDOM).answer(two.offer());
        HandshakeException e = assertThrows(HandshakeException.class, () -> one.complete(forTwo.bytes()));
        assertTrue(e.getMessage().contains("nonce"), e.getMessage());
    }

    @Test
    void signedTrailerShouldBeRequiredWhenDestinationPinsASigner() throws IOException {
        Registry reg = Registry.builtin();
        SigningKey sourceKey = SigningKey.fromSeed(new byte[32]);
        DeviceDescriptor s = CompatibilityCheckerTest.descriptor("counter-source-v2.json");
        DeviceDescriptor d = CompatibilityCheckerTest.descriptor("counter-dest-v1.json");
        MigrationSession.Source src = MigrationSession.source(s, reg, true, RANDOM).signWith(sourceKey);
        MigrationSession.Answer ans = MigrationSession.destination(d, new CompatibilityChecker(reg), true, RANDOM)
                .requireSignatureBy(Set.of(sourceKey.verifyingKey())).answer(src.offer());
        byte[] stream = save(src.complete(ans.bytes()), CounterState.sample(), true);
        DeviceStateReader r = DeviceStateReader.open(new ByteArrayInputStream(stream), ans.agreement());
        CounterV1.load(r);
        assertEquals(sourceKey.verifyingKey(), r.finish().signer());
    }

    @Test
    void codecShouldRoundTripEveryMessage() throws IOException {
        DeviceDescriptor s = CompatibilityCheckerTest.descriptor("blk-source.json");
        MigrationOffer offer = new MigrationOffer(s, new byte[32], new byte[32], new byte[32]);
        MigrationOffer back = HandshakeCodec.decodeOffer(HandshakeCodec.encode(offer));
        assertEquals(s, back.source());
        assertTrue(back.wantsMac());
        MigrationAccept accept = new MigrationAccept(new byte[32], 2, "a.b/c", "a.b/c/s", "impl", new byte[0], new byte[32], 0, List.of());
        MigrationAccept acceptBack = (MigrationAccept) HandshakeCodec.decodeAnswer(HandshakeCodec.encode(accept));
        assertEquals(2, acceptBack.formatVersion());
        assertEquals("impl", acceptBack.destinationImplementation());
        MigrationRefusal refusal = new MigrationRefusal(new byte[32], List.of(new Incompatibility(ReasonCode.NO_COMMON_VERSION, "x", "y")));
        assertEquals(refusal.reasons(), ((MigrationRefusal) HandshakeCodec.decodeAnswer(HandshakeCodec.encode(refusal))).reasons());
        assertThrows(HandshakeException.class, () -> HandshakeCodec.decodeAnswer(HandshakeCodec.encode(offer)), "an offer is not an answer");
    }
}
