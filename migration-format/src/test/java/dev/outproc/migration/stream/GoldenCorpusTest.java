package dev.outproc.migration.stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.outproc.migration.testing.CounterState;
import dev.outproc.migration.testing.CounterV1;
import dev.outproc.migration.testing.CounterV2;
import dev.outproc.migration.testing.GoldenCorpus;
import dev.outproc.migration.testing.Streams;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.channels.Channels;
import java.util.HexFormat;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The golden corpus: streams written by version 1 and 2 of the example counter device. The committed bytes are the
 * format's regression oracle; cross-version reading follows the evolution rules of the spec.
 */
class GoldenCorpusTest {

    @ParameterizedTest
    @ValueSource(strings = {"counter-v1.oms", "counter-v2.oms", "counter-v2-downgraded.oms", "counter-v2-mac-signed.oms", "worked-example.oms"})
    void shouldRegenerateCommittedBytesExactly(String name) throws IOException {
        Map<String, byte[]> fresh = GoldenCorpus.all();
        assertArrayEquals(Streams.golden(name), fresh.get(name),
                name + " changed: the writer no longer produces the committed bytes; if the change is intended, bump the "
                        + "format version, update the spec and rerun GoldenCorpus.main");
    }

    @Test
    void v2ShouldReadV1StreamWithDefaults() throws IOException {
        CounterState s = CounterV2.load(Streams.open(Streams.golden("counter-v1.oms"), GoldenCorpus.agreement(1, "").build()));
        assertEquals(CounterState.sample().asV1(), s);
        assertEquals(0, s.flags(), "field 4 absent in a v1 stream takes its default");
    }

    @Test
    void v1ShouldReadV1Stream() throws IOException {
        assertEquals(CounterState.sample().asV1(),
                CounterV1.load(Streams.open(Streams.golden("counter-v1.oms"), GoldenCorpus.agreement(1, "").build())));
    }

    @Test
    void v2ShouldReadV2Stream() throws IOException {
        assertEquals(CounterState.sample(), CounterV2.load(Streams.open(Streams.golden("counter-v2.oms"), GoldenCorpus.agreement(2, "").build())));
    }

    @Test
    void v1ShouldReadV2StreamWrittenDowngraded() throws IOException {
        byte[] b = Streams.golden("counter-v2-downgraded.oms");
        assertEquals(CounterState.sample().asV1(), CounterV1.load(Streams.open(b, GoldenCorpus.agreement(1, "").build())));
        assertEquals("outproc.dev/example/counter-v2", Streams.inspect(b).header().implementationId());
    }

    @Test
    void downgradedV2StreamShouldEqualV1StreamExceptImplementationId() throws IOException {
        byte[] v1 = Streams.golden("counter-v1.oms");
        byte[] v2 = Streams.golden("counter-v2-downgraded.oms");
        assertEquals(v1.length, v2.length);
        // Same layout: the only difference is the implementation id in the header, hence digests and transcript.
        assertEquals(Streams.inspect(v1).header().formatVersion(), Streams.inspect(v2).header().formatVersion());
    }

    @Test
    void v1ShouldRefuseV2OnlyMustUnderstandSectionWithClearReason() throws IOException {
        DeviceStateReader r = Streams.inspect(Streams.golden("counter-v2.oms"));
        UnsupportedSectionException e = assertThrows(UnsupportedSectionException.class, () -> CounterV1.load(r));
        assertEquals(4, e.sectionId());
        assertTrue(e.getMessage().contains("section 4 version 1") && e.getMessage().contains("must-understand"), e.getMessage());
    }

    @Test
    void v1ShouldRefuseFormatVersion2AtTheHeaderWhenRestoringUnattested() {
        byte[] b = Streams.golden("counter-v2.oms");
        UnsupportedSectionException e = assertThrows(UnsupportedSectionException.class, () -> DeviceStateReader.openUnattested(
                Channels.newChannel(new ByteArrayInputStream(b)), CounterState.MODEL, CounterState.FORMAT, 1, 1));
        assertTrue(e.getMessage().contains("format version 2"), e.getMessage());
    }

    @Test
    void v1ShouldSkipSkippableStatisticsSection() throws IOException {
        // Remove nothing but the must-understand rings: rewrite a v2 stream without section 4 and let v1 read it.
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        try (DeviceStateWriter w = DeviceStateWriter.open(out, GoldenCorpus.agreement(2, "").build())) {
            CounterState s = CounterState.sample();
            w.beginSection(1, 1, true).int16(1, s.queueSize()).int64(2, s.counter()).string(3, s.label()).int32(4, s.flags());
            w.endSection();
            w.beginSection(2, 1, true).bytes(1, s.ram());
            w.endSection();
            w.beginSection(3, 1, false).int64(1, 99).int64Array(2, new long[] {1, 2});
            w.endSection();
            w.finish();
        }
        CounterState read = CounterV1.load(Streams.inspect(out.toByteArray()));
        assertEquals(CounterState.sample().counter(), read.counter());
    }

    @Test
    void macSignedStreamShouldVerifyWithKeyAndPinnedSigner() throws IOException {
        byte[] b = Streams.golden("counter-v2-mac-signed.oms");
        DeviceStateReader r = Streams.open(b, GoldenCorpus.agreement(2, "").macKey(GoldenCorpus.MAC_KEY)
                .requireSignatureBy(Set.of(GoldenCorpus.SIGNER.verifyingKey())).build());
        assertEquals(CounterState.sample(), CounterV2.load(r));
        StreamTrailer t = r.finish();
        assertTrue(t.macVerified());
        assertEquals(GoldenCorpus.SIGNER.verifyingKey(), t.signer());
    }

    @Test
    void macSignedStreamShouldBeRefusedWithWrongMacKey() {
        byte[] key = GoldenCorpus.MAC_KEY.clone();
        key[0] ^= 1;
        StreamIntegrityException e = assertThrows(StreamIntegrityException.class,
                () -> CounterV2.load(Streams.open(Streams.golden("counter-v2-mac-signed.oms"), GoldenCorpus.agreement(2, "").macKey(key).build())));
        assertTrue(e.getMessage().contains("MAC"), e.getMessage());
    }

    @Test
    void workedExampleInSpecShouldBeTheCorpusFileAndDecode() throws IOException {
        byte[] fromDoc = SpecDocument.workedExampleBytes();
        assertArrayEquals(Streams.golden("worked-example.oms"), fromDoc, "the hex dump in docs/stream-format.md is out of date");
        DeviceStateReader r = Streams.inspect(fromDoc);
        assertEquals("example.org/dev", r.header().modelId());
        assertEquals("example.org/dev/state", r.header().formatClass());
        SectionInfo s = r.nextSection();
        assertNotNull(s);
        assertEquals(1, s.id());
        assertTrue(s.mustUnderstand());
        FieldReader f = r.fields();
        assertTrue(f.next());
        assertEquals(7, f.int32());
        assertTrue(f.next());
        assertEquals("hi", f.string());
        StreamTrailer t = r.finish();
        assertEquals(1, t.sectionCount());
        assertEquals(SpecDocument.documentedTranscript(), HexFormat.of().formatHex(t.transcript()));
    }
}
