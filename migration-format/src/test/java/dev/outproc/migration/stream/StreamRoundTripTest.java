package dev.outproc.migration.stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.outproc.migration.handshake.HandshakeAgreement;
import dev.outproc.migration.testing.Streams;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.Channels;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.random.RandomGenerator;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.RepetitionInfo;
import org.junit.jupiter.api.Test;

/** Writer and reader agree on every field type, nesting, chunk boundary and blob size. */
class StreamRoundTripTest {
    private static final HandshakeAgreement AGREEMENT = HandshakeAgreement.builder("example.org/rt", "example.org/rt/state", 1).build();

    /** A value generated for one field, with how to write and check it. */
    private sealed interface Value {
        record B(boolean v) implements Value {}
        record I8(byte v) implements Value {}
        record I16(short v) implements Value {}
        record I32(int v) implements Value {}
        record I64(long v) implements Value {}
        record Str(String v) implements Value {}
        record Bytes(byte[] v) implements Value {}
        record Longs(long[] v) implements Value {}
        record Rec(List<Value> fields) implements Value {}
        record Recs(List<List<Value>> elements) implements Value {}
    }

    private static Value random(RandomGenerator r, int depth) {
        int kind = r.nextInt(depth < 3 ? 10 : 8);
        return switch (kind) {
            case 0 -> new Value.B(r.nextBoolean());
            case 1 -> new Value.I8((byte) r.nextInt());
            case 2 -> new Value.I16((short) r.nextInt());
            case 3 -> new Value.I32(r.nextInt());
            case 4 -> new Value.I64(r.nextLong());
            case 5 -> {
                StringBuilder b = new StringBuilder();
                int n = r.nextInt(20);
                for (int i = 0; i < n; i++) {
                    b.appendCodePoint(r.nextInt(4) == 0 ? 0x1F600 + r.nextInt(50) : 0x20 + r.nextInt(0x7e0));
                }
                yield new Value.Str(b.toString());
            }
            case 6 -> {
                // Sometimes larger than a write chunk, so a value spans chunks.
                byte[] v = new byte[r.nextInt(8) == 0 ? 70_000 + r.nextInt(10_000) : r.nextInt(100)];
                r.nextBytes(v);
                yield new Value.Bytes(v);
            }
            case 7 -> new Value.Longs(r.longs(r.nextInt(10)).toArray());
            case 8 -> new Value.Rec(randomList(r, depth + 1));
            default -> {
                List<List<Value>> e = new ArrayList<>();
                int n = r.nextInt(4);
                for (int i = 0; i < n; i++) {
                    e.add(randomList(r, depth + 1));
                }
                yield new Value.Recs(e);
            }
        };
    }

    private static List<Value> randomList(RandomGenerator r, int depth) {
        List<Value> l = new ArrayList<>();
        int n = r.nextInt(6);
        for (int i = 0; i < n; i++) {
            l.add(random(r, depth));
        }
        return l;
    }

    private static void write(FieldWriter w, List<Value> values) throws IOException {
        int tag = 1;
        for (Value v : values) {
            switch (v) {
                case Value.B x -> w.bool(tag, x.v());
                case Value.I8 x -> w.int8(tag, x.v());
                case Value.I16 x -> w.int16(tag, x.v());
                case Value.I32 x -> w.int32(tag, x.v());
                case Value.I64 x -> w.int64(tag, x.v());
                case Value.Str x -> w.string(tag, x.v());
                case Value.Bytes x -> w.bytes(tag, x.v());
                case Value.Longs x -> w.int64Array(tag, x.v());
                case Value.Rec x -> {
                    w.beginRecord(tag);
                    write(w, x.fields());
                    w.endRecord();
                }
                case Value.Recs x -> {
                    w.beginRecordArray(tag, x.elements().size());
                    for (List<Value> e : x.elements()) {
                        w.beginElement();
                        write(w, e);
                        w.endRecord();
                    }
                    w.endArray();
                }
            }
            tag++;
        }
    }

    private static void check(FieldReader f, List<Value> values, String seed) throws IOException {
        int tag = 1;
        for (Value v : values) {
            assertTrue(f.next(), "missing field " + tag + ", " + seed);
            assertEquals(tag, f.tag(), seed);
            switch (v) {
                case Value.B x -> assertEquals(x.v(), f.bool(), seed);
                case Value.I8 x -> assertEquals(x.v(), f.int8(), seed);
                case Value.I16 x -> assertEquals(x.v(), f.int16(), seed);
                case Value.I32 x -> assertEquals(x.v(), f.int32(), seed);
                case Value.I64 x -> assertEquals(x.v(), f.int64(), seed);
                case Value.Str x -> assertEquals(x.v(), f.string(), seed);
                case Value.Bytes x -> assertArrayEquals(x.v(), f.bytes(), seed);
                case Value.Longs x -> assertArrayEquals(x.v(), f.array().toLongArray(), seed);
                case Value.Rec x -> check(f.record(), x.fields(), seed);
                case Value.Recs x -> {
                    ArrayReader a = f.array();
                    assertEquals(x.elements().size(), a.count(), seed);
                    for (List<Value> e : x.elements()) {
                        check(a.nextRecord(), e, seed);
                    }
                    assertFalse(a.hasNext(), seed);
                }
            }
            tag++;
        }
        assertFalse(f.next(), "extra field after " + tag + ", " + seed);
    }

    @RepeatedTest(40)
    void randomSectionsShouldRoundTrip(RepetitionInfo info) throws IOException {
        long seed = 0x5eed0000L + info.getCurrentRepetition();
        String msg = "seed=" + seed;
        RandomGenerator r = new SplittableRandom(seed);
        List<List<Value>> sections = new ArrayList<>();
        int n = 1 + r.nextInt(5);
        for (int i = 0; i < n; i++) {
            sections.add(randomList(r, 0));
        }
        boolean digests = r.nextBoolean();
        HandshakeAgreement a = HandshakeAgreement.builder("example.org/rt", "example.org/rt/state", 1).digests(digests).build();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (DeviceStateWriter w = DeviceStateWriter.open(out, a)) {
            for (int i = 0; i < n; i++) {
                write(w.beginSection(i + 1, 1, true), sections.get(i));
                w.endSection();
            }
            w.finish();
        }
        DeviceStateReader rd = Streams.open(out.toByteArray(), a);
        for (int i = 0; i < n; i++) {
            SectionInfo s = rd.nextSection();
            assertEquals(i + 1, s.id(), msg);
            check(rd.fields(), sections.get(i), msg);
        }
        assertNull(rd.nextSection(), msg);
        assertEquals(n, rd.finish().sectionCount(), msg);
    }

    @RepeatedTest(10)
    void unreadFieldsShouldBeSkippedLikeANewerWritersFields(RepetitionInfo info) throws IOException {
        long seed = 0x5c1900L + info.getCurrentRepetition();
        RandomGenerator r = new SplittableRandom(seed);
        List<Value> fields = randomList(r, 0);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (DeviceStateWriter w = DeviceStateWriter.open(out, AGREEMENT)) {
            write(w.beginSection(1, 1, true), fields);
            w.endSection();
            w.beginSection(2, 1, true).int64(1, 42);
            w.endSection();
            w.finish();
        }
        DeviceStateReader rd = Streams.open(out.toByteArray(), AGREEMENT);
        rd.nextSection();
        FieldReader f = rd.fields();
        int seen = 0;
        while (f.next()) {
            seen++; // a reader that knows none of the tags skips every value, nested ones included
        }
        assertEquals(fields.size(), seen, "seed=" + seed);
        rd.nextSection();
        FieldReader g = rd.fields();
        assertTrue(g.next());
        assertEquals(42, g.int64(), "seed=" + seed);
        rd.finish();
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(booleans = {true, false})
    void largeBlobShouldGoStraightBetweenSegments(boolean digests) throws IOException {
        HandshakeAgreement agreement = HandshakeAgreement.builder("example.org/rt", "example.org/rt/state", 1).digests(digests).build();
        long size = 5L * 1024 * 1024 + 17; // several 1 MiB blob chunks plus a tail
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment src = arena.allocate(size);
            for (long i = 0; i < size; i += 8) {
                src.set(ValueLayout.JAVA_LONG_UNALIGNED, Math.min(i, size - 8), i * 0x9E3779B97F4A7C15L);
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            try (DeviceStateWriter w = DeviceStateWriter.open(out, agreement)) {
                w.beginSection(1, 1, true).int32(1, 3).bytes(2, src).int32(3, 4);
                w.endSection();
                w.finish();
            }
            MemorySegment dst = arena.allocate(size);
            // A truncated copy must fail typed, also on the direct path.
            byte[] all = out.toByteArray();
            byte[] cut = java.util.Arrays.copyOf(all, all.length / 2);
            DeviceStateReader t = Streams.open(cut, agreement);
            t.nextSection();
            FieldReader tf = t.fields();
            tf.next();
            tf.int32();
            tf.next();
            assertThrows(StreamTruncatedException.class, () -> tf.bytesInto(dst));
            DeviceStateReader r = Streams.open(out.toByteArray(), agreement);
            r.nextSection();
            FieldReader f = r.fields();
            f.next();
            assertEquals(3, f.int32());
            f.next();
            f.bytesInto(dst);
            f.next();
            assertEquals(4, f.int32());
            r.finish();
            assertEquals(-1, src.mismatch(dst));
        }
    }

    @Test
    void blobOfWrongSizeShouldBeRefusedBeforeAnyCopy() throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (DeviceStateWriter w = DeviceStateWriter.open(out, AGREEMENT)) {
            w.beginSection(1, 1, true).bytes(1, new byte[100]);
            w.endSection();
            w.finish();
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment dst = arena.allocate(64);
            DeviceStateReader r = Streams.open(out.toByteArray(), AGREEMENT);
            r.nextSection();
            FieldReader f = r.fields();
            f.next();
            StreamFormatException e = assertThrows(StreamFormatException.class, () -> f.bytesInto(dst));
            assertTrue(e.getMessage().contains("length 100") && e.getMessage().contains("size 64"), e.getMessage());
        }
    }

    @Test
    void envelopeShouldCarryVendorSchemaAndPayload() throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (Arena arena = Arena.ofConfined(); DeviceStateWriter w = DeviceStateWriter.open(out, AGREEMENT)) {
            MemorySegment p = arena.allocate(3);
            p.set(ValueLayout.JAVA_BYTE, 2, (byte) 9);
            w.writeEnvelope(7, 2, true, "example.com/acme", 5, p);
            w.finish();
        }
        DeviceStateReader r = Streams.open(out.toByteArray(), AGREEMENT);
        SectionInfo s = r.nextSection();
        assertTrue(s.envelope() && s.mustUnderstand());
        Envelope e = r.envelope();
        assertEquals(new Envelope("example.com/acme", 5, 3), e);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment d = arena.allocate(3);
            r.readEnvelopePayload(d);
            assertEquals(9, d.get(ValueLayout.JAVA_BYTE, 2));
        }
        r.finish();
    }

    @Test
    void unknownMustUnderstandSectionShouldBeRefusedAndSkippableSkipped() throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (DeviceStateWriter w = DeviceStateWriter.open(out, AGREEMENT)) {
            w.beginSection(9, 1, false).int32(1, 1);
            w.endSection();
            w.beginSection(10, 3, true).int32(1, 1);
            w.endSection();
            w.finish();
        }
        DeviceStateReader r = Streams.open(out.toByteArray(), AGREEMENT);
        assertEquals(9, r.nextSection().id());
        r.skipSection();
        assertEquals(10, r.nextSection().id());
        UnsupportedSectionException e = assertThrows(UnsupportedSectionException.class, () -> r.requireVersion(1, 2));
        assertEquals(3, e.sectionVersion());
        assertTrue(e.getMessage().contains("1..2"), e.getMessage());
        DeviceStateReader r2 = Streams.open(out.toByteArray(), AGREEMENT);
        UnsupportedSectionException e2 = assertThrows(UnsupportedSectionException.class, r2::finish);
        assertEquals(10, e2.sectionId());
    }

    @Test
    void abortedWriterShouldLeaveAStreamNoReaderAccepts() throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (DeviceStateWriter w = DeviceStateWriter.open(Channels.newChannel(out), AGREEMENT)) {
            w.beginSection(1, 1, true).int32(1, 1);
            w.endSection();
            // no finish(): the save failed half-way
        }
        assertThrows(StreamTruncatedException.class, () -> Streams.open(out.toByteArray(), AGREEMENT).finish());
    }

    @Test
    void readerShouldRejectWrongFieldTypeWithTagAndTypes() throws IOException {
        byte[] b = FieldWriter.inMemory().int16(5, 1).toByteArray();
        FieldReader f = FieldReader.of(b);
        f.next();
        StreamFormatException e = assertThrows(StreamFormatException.class, f::int32);
        assertTrue(e.getMessage().contains("tag 5") && e.getMessage().contains("INT16"), e.getMessage());
    }

    @Test
    void readerShouldRejectNonCanonicalBool() throws IOException {
        byte[] b = FieldWriter.inMemory().bool(1, true).toByteArray();
        b[3] = 2;
        FieldReader f = FieldReader.of(b);
        f.next();
        assertThrows(StreamFormatException.class, f::bool);
    }

    @Test
    void readerShouldRejectHugeDeclaredStringWithoutAllocating() throws IOException {
        byte[] b = FieldWriter.inMemory().string(1, "x").toByteArray();
        b[3] = (byte) 0xff;
        b[4] = (byte) 0xff;
        b[5] = (byte) 0xff;
        b[6] = (byte) 0x7f;
        FieldReader f = FieldReader.of(b);
        f.next();
        StreamFormatException e = assertThrows(StreamFormatException.class, f::string);
        assertTrue(e.getMessage().contains("2147483647"), e.getMessage());
    }

    @Test
    void readVerifiedShouldHandOutStateOnlyAfterTheTrailerVerified() throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        DeviceStateWriter.write(Channels.newChannel(out), AGREEMENT, w -> {
            w.beginSection(1, 1, true).int64(1, 77);
            w.endSection();
            w.beginSection(2, 1, true).int64(1, 78);
            w.endSection();
        });
        byte[] good = out.toByteArray();
        StateDecoder<Long> decoder = r -> {
            r.nextSection();
            FieldReader f = r.fields();
            f.next();
            return f.int64(); // stops early: section 2 must still be understood, so it is refused below
        };
        assertThrows(UnsupportedSectionException.class,
                () -> DeviceStateReader.readVerified(Channels.newChannel(new java.io.ByteArrayInputStream(good)), AGREEMENT, decoder));
        StateDecoder<Long> full = r -> {
            long sum = 0;
            while (r.nextSection() != null) {
                FieldReader f = r.fields();
                f.next();
                sum += f.int64();
            }
            return sum;
        };
        assertEquals(155L, DeviceStateReader.readVerified(Channels.newChannel(new java.io.ByteArrayInputStream(good)), AGREEMENT, full));
        byte[] bad = good.clone();
        bad[bad.length - 1] ^= 1; // last byte of the transcript
        assertThrows(StreamIntegrityException.class,
                () -> DeviceStateReader.readVerified(Channels.newChannel(new java.io.ByteArrayInputStream(bad)), AGREEMENT, full));
    }

    @Test
    void blobWhoseLengthWasReadButBodyLeftShouldBeSkippedByNext() throws IOException {
        byte[] b = FieldWriter.inMemory().bytes(1, new byte[] {0, 0, 7, 4, 1, 2, 3, 4}).int32(2, 99).toByteArray();
        FieldReader f = FieldReader.of(b);
        assertTrue(f.next());
        assertEquals(8, f.bytesLength());
        assertTrue(f.next(), "the blob's bytes must not be parsed as fields");
        assertEquals(2, f.tag());
        assertEquals(99, f.int32());
        assertFalse(f.next());
    }

    @Test
    void heapSegmentsOverLongArraysShouldWorkWithAndWithoutDigests() throws IOException {
        for (boolean digests : new boolean[] {true, false}) {
            HandshakeAgreement a = HandshakeAgreement.builder("example.org/rt", "example.org/rt/state", 1).digests(digests).build();
            long[] words = new SplittableRandom(digests ? 1 : 2).longs(40_000).toArray();
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            DeviceStateWriter.write(Channels.newChannel(out), a, w -> {
                w.beginSection(1, 1, true).bytes(1, MemorySegment.ofArray(words));
                w.endSection();
            });
            long[] back = new long[words.length];
            DeviceStateReader.readVerified(Channels.newChannel(new java.io.ByteArrayInputStream(out.toByteArray())), a, r -> {
                r.nextSection();
                FieldReader f = r.fields();
                f.next();
                f.bytesInto(MemorySegment.ofArray(back));
                return null;
            });
            assertArrayEquals(words, back, "digests=" + digests);
        }
    }
}
