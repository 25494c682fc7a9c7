package dev.outproc.migration.stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.outproc.migration.handshake.HandshakeAgreement;
import dev.outproc.migration.testing.CounterState;
import dev.outproc.migration.testing.CounterV2;
import dev.outproc.migration.testing.GoldenCorpus;
import dev.outproc.migration.testing.Streams;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every corruption, truncation, reordering, splice and replay of a sample stream is rejected before the device
 * could commit state, always as a {@link MigrationStreamException} (never another exception type).
 */
class TamperTest {
    private static final String MAC_SIGNED = "counter-v2-mac-signed.oms";
    private static final String DIGESTS_ONLY = "counter-v2.oms";

    private static HandshakeAgreement agreementFor(String name) {
        HandshakeAgreement.Builder b = GoldenCorpus.agreement(2, "");
        if (name.equals(MAC_SIGNED)) {
            b.macKey(GoldenCorpus.MAC_KEY).requireSignatureBy(Set.of(GoldenCorpus.SIGNER.verifyingKey()));
        }
        return b.build();
    }

    /** Loads the stream as the destination device would; returns normally only if the stream was accepted. */
    private static CounterState load(byte[] b, HandshakeAgreement a) throws IOException {
        return CounterV2.load(Streams.open(b, a));
    }

    private static void assertRejected(byte[] b, HandshakeAgreement a, String what) {
        try {
            CounterState s = load(b, a);
            fail(what + " was accepted, loaded " + s);
        } catch (MigrationStreamException expected) {
            // rejected with a typed stream exception: what the format promises
        } catch (IOException | RuntimeException e) {
            fail(what + " was rejected with " + e.getClass().getName() + " instead of a MigrationStreamException: " + e.getMessage(), e);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {MAC_SIGNED, DIGESTS_ONLY})
    void sampleShouldLoadUntouched(String name) throws IOException {
        assertEquals(CounterState.sample(), load(Streams.golden(name), agreementFor(name)));
    }

    @ParameterizedTest
    @ValueSource(strings = {MAC_SIGNED, DIGESTS_ONLY})
    void shouldRejectEverySingleBitFlip(String name) {
        byte[] sample = Streams.golden(name);
        HandshakeAgreement a = agreementFor(name);
        for (int bit = 0; bit < sample.length * 8; bit++) {
            byte[] b = sample.clone();
            b[bit >>> 3] ^= (byte) (1 << (bit & 7));
            assertRejected(b, a, "flip of bit " + (bit & 7) + " of byte " + (bit >>> 3) + " in " + name);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {MAC_SIGNED, DIGESTS_ONLY})
    void shouldRejectEveryTruncation(String name) {
        byte[] sample = Streams.golden(name);
        HandshakeAgreement a = agreementFor(name);
        for (int len = 0; len < sample.length; len++) {
            assertRejected(Arrays.copyOf(sample, len), a, "truncation to " + len + " of " + sample.length + " bytes of " + name);
        }
    }

    @Test
    void shouldRejectBytesAfterTheTrailer() {
        byte[] sample = Streams.golden(MAC_SIGNED);
        byte[] b = Arrays.copyOf(sample, sample.length + 1);
        assertRejected(b, agreementFor(MAC_SIGNED), "one byte appended");
    }

    /** The sample split into header, sections (frame through digest) and trailer. */
    private record Parts(byte[] header, List<byte[]> sections, byte[] trailer) {
        byte[] join(List<byte[]> secs, byte[] trl) {
            ByteArrayOutputStream o = new ByteArrayOutputStream();
            o.writeBytes(header);
            secs.forEach(o::writeBytes);
            o.writeBytes(trl);
            return o.toByteArray();
        }
    }

    private static Parts split(byte[] b) throws IOException {
        DeviceStateReader r = Streams.inspect(b);
        List<Long> starts = new ArrayList<>();
        SectionInfo s;
        while ((s = r.nextSection()) != null) {
            starts.add(s.offset());
            r.fields(); // claim it: the split reads every section, known or not
        }
        long trailerAt = r.finish().streamBytes() - trailerBytes(r.header());
        List<byte[]> secs = new ArrayList<>();
        for (int i = 0; i < starts.size(); i++) {
            long end = i + 1 < starts.size() ? starts.get(i + 1) : trailerAt;
            secs.add(Arrays.copyOfRange(b, (int) (long) starts.get(i), (int) end));
        }
        return new Parts(Arrays.copyOf(b, (int) (long) starts.get(0)), secs, Arrays.copyOfRange(b, (int) trailerAt, b.length));
    }

    private static int trailerBytes(StreamHeader h) {
        return 8 + (h.hasDigests() ? 32 : 0) + (h.hasMac() ? 32 : 0) + (h.hasSignature() ? 96 : 0);
    }

    @ParameterizedTest
    @ValueSource(strings = {MAC_SIGNED, DIGESTS_ONLY})
    void shouldRejectSwappedSections(String name) throws IOException {
        Parts p = split(Streams.golden(name));
        assertEquals(5, p.sections().size());
        for (int i = 0; i + 1 < p.sections().size(); i++) {
            List<byte[]> swapped = new ArrayList<>(p.sections());
            swapped.set(i, p.sections().get(i + 1));
            swapped.set(i + 1, p.sections().get(i));
            assertRejected(p.join(swapped, p.trailer()), agreementFor(name), "sections " + i + " and " + (i + 1) + " swapped in " + name);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {MAC_SIGNED, DIGESTS_ONLY})
    void shouldRejectDroppedSection(String name) throws IOException {
        Parts p = split(Streams.golden(name));
        for (int i = 0; i < p.sections().size(); i++) {
            List<byte[]> dropped = new ArrayList<>(p.sections());
            dropped.remove(i);
            assertRejected(p.join(dropped, p.trailer()), agreementFor(name), "section " + i + " dropped from " + name);
        }
    }

    /**
     * An attacker without the MAC key reorders sections and recomputes sequence numbers, section digests and the
     * transcript: the digests then agree, and only the MAC (and signature) can tell.
     */
    @Test
    void macShouldRejectReorderWithRecomputedDigests() throws IOException {
        byte[] sample = Streams.golden(MAC_SIGNED);
        Parts p = split(sample);
        List<byte[]> secs = new ArrayList<>(p.sections());
        byte[] a = secs.get(2);
        secs.set(2, secs.get(3));
        secs.set(3, a);
        MessageDigest sha = sha256();
        byte[] transcript = sha.digest(p.header());
        List<byte[]> fixed = new ArrayList<>();
        for (int i = 0; i < secs.size(); i++) {
            byte[] s = secs.get(i).clone();
            s[8] = (byte) i; // sequence number, little-endian u32 at offset 8
            byte[] d = sha.digest(Arrays.copyOf(s, s.length - 32));
            System.arraycopy(d, 0, s, s.length - 32, 32);
            sha.update(transcript);
            sha.update(d);
            transcript = sha.digest();
            fixed.add(s);
        }
        byte[] trailer = p.trailer().clone();
        System.arraycopy(transcript, 0, trailer, 8, 32);
        byte[] forged = p.join(fixed, trailer);
        HandshakeAgreement noMac = GoldenCorpus.agreement(2, "").build();
        assertThrows(StreamIntegrityException.class, () -> load(forged, agreementFor(MAC_SIGNED)));
        // Without the MAC key only the trailer signature is left to catch it: every section digest passes.
        StreamIntegrityException e = assertThrows(StreamIntegrityException.class, () -> {
            DeviceStateReader r = Streams.open(forged, noMac);
            while (r.nextSection() != null) {
                r.fields();
            }
        });
        assertTrue(e.getMessage().contains("signature"), e.getMessage());
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void shouldRejectSectionSplicedFromAnotherStream() throws IOException {
        CounterState other = new CounterState(128, 1, "other", 0, new byte[64], 0, new long[0], List.of(), null);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (DeviceStateWriter w = DeviceStateWriter.open(out, GoldenCorpus.agreement(2, "").macKey(GoldenCorpus.MAC_KEY).build())) {
            CounterV2.save(other, w);
        }
        Parts donor = split(out.toByteArray());
        Parts p = split(Streams.golden(MAC_SIGNED));
        List<byte[]> secs = new ArrayList<>(p.sections());
        secs.set(1, donor.sections().get(1)); // the other device's RAM, with its own valid digest
        assertRejected(p.join(secs, p.trailer()), agreementFor(MAC_SIGNED), "RAM section spliced from another stream");
    }

    @Test
    void shouldRejectReplayIntoAnotherMigration() {
        byte[] nonce = GoldenCorpus.NONCE.clone();
        nonce[31] ^= 1;
        HandshakeAgreement second = GoldenCorpus.agreement(2, "").macKey(GoldenCorpus.MAC_KEY).nonce(nonce).build();
        StreamIntegrityException e = assertThrows(StreamIntegrityException.class, () -> load(Streams.golden(MAC_SIGNED), second));
        assertTrue(e.getMessage().contains("replayed"), e.getMessage());
    }

    @Test
    void shouldRejectStreamWithoutMacWhenAgreementRequiresOne() {
        HandshakeAgreement a = GoldenCorpus.agreement(2, "").macKey(GoldenCorpus.MAC_KEY).build();
        StreamIntegrityException e = assertThrows(StreamIntegrityException.class, () -> load(Streams.golden(DIGESTS_ONLY), a));
        assertTrue(e.getMessage().contains("no MAC"), e.getMessage());
    }

    @Test
    void shouldRejectSignatureByUntrustedKey() {
        HandshakeAgreement a = GoldenCorpus.agreement(2, "").macKey(GoldenCorpus.MAC_KEY)
                .requireSignatureBy(Set.of(dev.outproc.migration.integrity.SigningKey.fromSeed(new byte[32]).verifyingKey())).build();
        StreamIntegrityException e = assertThrows(StreamIntegrityException.class, () -> load(Streams.golden(MAC_SIGNED), a));
        assertTrue(e.getMessage().contains("not a trusted signer"), e.getMessage());
    }
}
