package dev.outproc.migration.handshake;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.outproc.migration.integrity.SigningKey;
import dev.outproc.migration.model.DeviceModel;
import dev.outproc.migration.model.Implementation;
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
import java.nio.channels.Channels;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The security model of the handshake (docs/security.md): a fresh destination nonce in every accept, requirements
 * stated in the accept and enforced by the source before any state is sent, signer keys bound to registry
 * implementations, refusals that keep their reasons, and pinned signers without a handshake.
 */
class HandshakeSecurityTest {
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final SigningKey VENDOR = SigningKey.fromSeed(filled(0x51));
    private static final SigningKey STRANGER = SigningKey.fromSeed(filled(0x52));

    private static byte[] filled(int b) {
        byte[] x = new byte[32];
        Arrays.fill(x, (byte) b);
        return x;
    }

    private static DeviceDescriptor source() throws IOException {
        return CompatibilityCheckerTest.descriptor("counter-source-v2.json");
    }

    private static DeviceDescriptor destination() throws IOException {
        return CompatibilityCheckerTest.descriptor("counter-dest-v1.json");
    }

    private static byte[] save(HandshakeAgreement a) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (DeviceStateWriter w = DeviceStateWriter.open(out, a)) {
            CounterV2.save(CounterState.sample(), w);
        }
        return out.toByteArray();
    }

    /** The builtin registry with the counter v2 implementation's streams bound to one signer key. */
    private static Registry boundRegistry(SigningKey signer) throws IOException {
        Registry builtin = Registry.builtin();
        DeviceModel m = builtin.model(CounterState.MODEL).orElseThrow();
        List<Implementation> impls = new ArrayList<>();
        for (Implementation i : m.implementations()) {
            impls.add(i.id().equals("outproc.dev/example/counter-v2")
                    ? new Implementation(i.id(), i.vendor(), i.formatClass(), i.readVersions(), i.writeVersions(), List.of(signer.verifyingKey()))
                    : i);
        }
        DeviceModel bound = new DeviceModel(m.id(), m.revision() + 1, m.description(), m.pciAliases(), m.parameters(),
                m.constraints(), m.formatClasses(), impls);
        return builtin.merge(Registry.of(List.of(bound)));
    }

    @Test
    void everyAcceptShouldCarryAFreshDestinationNonceSoARecordedStreamIsRefused() throws IOException {
        Registry reg = Registry.builtin();
        MigrationSession.Source src = MigrationSession.source(source(), reg, false, RANDOM);
        byte[] offer = src.offer();
        MigrationSession.Destination dst = MigrationSession.destination(destination(), new CompatibilityChecker(reg), false, RANDOM);
        MigrationSession.Answer first = dst.answer(offer);
        byte[] recorded = save(src.complete(first.bytes()));
        assertEquals(CounterState.sample().asV1(), CounterV1.load(DeviceStateReader.open(new ByteArrayInputStream(recorded), first.agreement())));

        // An attacker replays the recorded offer into an identical destination, then the recorded stream.
        MigrationSession.Answer replayed = dst.answer(offer);
        assertTrue(replayed.accepted());
        MigrationAccept a1 = (MigrationAccept) HandshakeCodec.decodeAnswer(first.bytes());
        MigrationAccept a2 = (MigrationAccept) HandshakeCodec.decodeAnswer(replayed.bytes());
        assertFalse(Arrays.equals(a1.destinationNonce(), a2.destinationNonce()), "each accept has its own destination nonce");
        StreamIntegrityException e = assertThrows(StreamIntegrityException.class,
                () -> CounterV1.load(DeviceStateReader.open(new ByteArrayInputStream(recorded), replayed.agreement())));
        assertTrue(e.getMessage().contains("handshake hash"), e.getMessage());
    }

    @Test
    void aRecordedAcceptShouldBeRefusedByTheNextSource() throws IOException {
        Registry reg = Registry.builtin();
        MigrationSession.Destination dst = MigrationSession.destination(destination(), new CompatibilityChecker(reg), false, RANDOM);
        byte[] recordedAccept = dst.answer(MigrationSession.source(source(), reg, false, RANDOM).offer()).bytes();
        MigrationSession.Source next = MigrationSession.source(source(), reg, false, RANDOM);
        HandshakeException e = assertThrows(HandshakeException.class, () -> next.complete(recordedAccept));
        assertTrue(e.getMessage().contains("nonce"), e.getMessage());
    }

    @Test
    void aSourceShouldRefuseBeforeSendingStateWhenItCannotGiveTheRequiredSignature() throws IOException {
        Registry reg = Registry.builtin();
        MigrationSession.Destination dst = MigrationSession.destination(destination(), new CompatibilityChecker(reg), false, RANDOM)
                .requireSignatureBy(Set.of(VENDOR.verifyingKey()));
        MigrationSession.Source unsigned = MigrationSession.source(source(), reg, false, RANDOM);
        MigrationSession.Answer a = dst.answer(unsigned.offer());
        MigrationAccept accept = (MigrationAccept) HandshakeCodec.decodeAnswer(a.bytes());
        assertTrue(accept.requiresSignature());
        assertEquals(1, accept.signers().size());
        HandshakeException none = assertThrows(HandshakeException.class, () -> unsigned.complete(a.bytes()));
        assertTrue(none.getMessage().contains("requires a signed stream"), none.getMessage());

        MigrationSession.Source wrongKey = MigrationSession.source(source(), reg, false, RANDOM).signWith(STRANGER);
        HandshakeException other = assertThrows(HandshakeException.class, () -> wrongKey.complete(dst.answer(wrongKey.offer()).bytes()));
        assertTrue(other.getMessage().contains("not one of them"), other.getMessage());
    }

    @Test
    void strippingARequiredProtectionShouldBeRefusedByTheDestination() throws IOException {
        Registry reg = Registry.builtin();
        MigrationSession.Destination dst = MigrationSession.destination(destination(), new CompatibilityChecker(reg), true, RANDOM)
                .requireSignatureBy(Set.of(VENDOR.verifyingKey()));
        MigrationSession.Source src = MigrationSession.source(source(), reg, true, RANDOM).signWith(VENDOR);
        MigrationSession.Answer a = dst.answer(src.offer());
        HandshakeAgreement sa = src.complete(a.bytes());
        byte[] good = save(sa);
        assertEquals(CounterState.sample().asV1(), CounterV1.load(DeviceStateReader.open(new ByteArrayInputStream(good), a.agreement())));

        // A writer (or a relay) drops the signature and the MAC: same handshake, weaker stream.
        HandshakeAgreement stripped = HandshakeAgreement.builder(sa.modelId(), sa.formatClass(), sa.formatVersion())
                .nonce(sa.nonce()).handshakeHash(sa.handshakeHash()).build();
        byte[] weak = save(stripped);
        StreamIntegrityException e = assertThrows(StreamIntegrityException.class,
                () -> CounterV1.load(DeviceStateReader.open(new ByteArrayInputStream(weak), a.agreement())));
        assertTrue(e.getMessage().contains("requires"), e.getMessage());

        // Signed by another key with the right MAC: refused as well.
        HandshakeAgreement otherSigner = HandshakeAgreement.builder(sa.modelId(), sa.formatClass(), sa.formatVersion())
                .nonce(sa.nonce()).handshakeHash(sa.handshakeHash()).macKey(sa.macKey()).signWith(STRANGER).build();
        byte[] forged = save(otherSigner);
        StreamIntegrityException f = assertThrows(StreamIntegrityException.class, () -> {
            DeviceStateReader r = DeviceStateReader.open(new ByteArrayInputStream(forged), a.agreement());
            CounterV1.load(r);
            r.finish();
        });
        assertTrue(f.getMessage().contains("not a trusted signer"), f.getMessage());
    }

    @Test
    void signerKeysBoundToTheSourceImplementationShouldBeRequired() throws IOException {
        Registry reg = boundRegistry(VENDOR);
        MigrationSession.Destination dst = MigrationSession.destination(destination(), new CompatibilityChecker(reg), false, RANDOM);
        MigrationSession.Source src = MigrationSession.source(source(), reg, false, RANDOM).signWith(VENDOR);
        MigrationSession.Answer a = dst.answer(src.offer());
        MigrationAccept accept = (MigrationAccept) HandshakeCodec.decodeAnswer(a.bytes());
        assertTrue(accept.requiresSignature(), "the registry binds a signer to counter-v2");
        assertTrue(Arrays.equals(VENDOR.verifyingKey().encoded(), accept.signers().getFirst()));
        DeviceStateReader r = DeviceStateReader.open(new ByteArrayInputStream(save(src.complete(a.bytes()))), a.agreement());
        CounterV1.load(r);
        assertEquals(VENDOR.verifyingKey(), r.finish().signer());

        // A destination that pins another key than the one bound to the implementation refuses with a reason.
        MigrationSession.Answer refused = MigrationSession.destination(destination(), new CompatibilityChecker(reg), false, RANDOM)
                .requireSignatureBy(Set.of(STRANGER.verifyingKey())).answer(src.offer());
        assertFalse(refused.accepted());
        assertEquals(ReasonCode.SIGNER_NOT_BOUND, refused.reasons().getFirst().code());
    }

    @Test
    void aRefusalWithAZeroNonceShouldKeepItsReasons() throws IOException {
        Registry reg = Registry.builtin();
        MigrationSession.Source src = MigrationSession.source(source(), reg, false, RANDOM);
        byte[] garbled = src.offer();
        garbled[HandshakeCodec.HEADER_BYTES + 1] ^= 0x7f;
        MigrationSession.Answer a = MigrationSession.destination(destination(), new CompatibilityChecker(reg), false, RANDOM).answer(garbled);
        assertFalse(a.accepted());
        MigrationRefusedException e = assertThrows(MigrationRefusedException.class, () -> src.complete(a.bytes()));
        assertEquals(ReasonCode.MALFORMED_OFFER, e.reasons().getFirst().code());
    }

    @Test
    void aSnapshotWithoutHandshakeShouldBeReadOnlyWhenSignedByThePinnedSignerWithTheMac() throws IOException {
        byte[] macKey = filled(0x61);
        HandshakeAgreement writer = HandshakeAgreement.builder(CounterState.MODEL, CounterState.FORMAT, 2).macKey(macKey).signWith(VENDOR).build();
        byte[] snapshot = save(writer);
        try (DeviceStateReader r = DeviceStateReader.openUnattested(Channels.newChannel(new ByteArrayInputStream(snapshot)),
                CounterState.MODEL, CounterState.FORMAT, 1, 2, macKey, Set.of(VENDOR.verifyingKey()))) {
            CounterV2.load(r);
            assertEquals(VENDOR.verifyingKey(), r.finish().signer());
        }
        StreamIntegrityException other = assertThrows(StreamIntegrityException.class, () -> {
            try (DeviceStateReader r = DeviceStateReader.openUnattested(Channels.newChannel(new ByteArrayInputStream(snapshot)),
                    CounterState.MODEL, CounterState.FORMAT, 1, 2, null, Set.of(STRANGER.verifyingKey()))) {
                CounterV2.load(r);
                r.finish();
            }
        });
        assertTrue(other.getMessage().contains("not a trusted signer"), other.getMessage());
        byte[] wrongMac = filled(0x62);
        assertThrows(StreamIntegrityException.class, () -> {
            try (DeviceStateReader r = DeviceStateReader.openUnattested(Channels.newChannel(new ByteArrayInputStream(snapshot)),
                    CounterState.MODEL, CounterState.FORMAT, 1, 2, wrongMac, Set.of())) {
                CounterV2.load(r);
                r.finish();
            }
        });
        byte[] unsigned = save(HandshakeAgreement.builder(CounterState.MODEL, CounterState.FORMAT, 2).build());
        StreamIntegrityException none = assertThrows(StreamIntegrityException.class, () -> DeviceStateReader.openUnattested(
                Channels.newChannel(new ByteArrayInputStream(unsigned)), CounterState.MODEL, CounterState.FORMAT, 1, 2, null, Set.of(VENDOR.verifyingKey())));
        assertTrue(none.getMessage().contains("not signed"), none.getMessage());
    }
}
