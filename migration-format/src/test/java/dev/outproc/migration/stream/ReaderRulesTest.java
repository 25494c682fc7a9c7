package dev.outproc.migration.stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.outproc.migration.handshake.HandshakeAgreement;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.channels.Channels;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The normative reader rules of stream-format.md that a second implementation needs spelled out: header extension
 * entries (§3.1), one section per id (§4.1), exactly three envelope fields (§4.5), depth counting (§5.2) and repeated
 * tags (§5.3).
 */
class ReaderRulesTest {
    interface Body {
        void write(DeviceStateWriter w) throws IOException;
    }

    /** A stream without digests (so that bytes can be spliced in without recomputing them). */
    private static byte[] plain(Body body) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (DeviceStateWriter w = DeviceStateWriter.open(out, HandshakeAgreement.builder("example.org/dev", "example.org/dev/state", 1)
                .digests(false).build())) {
            body.write(w);
            w.finish();
        }
        return out.toByteArray();
    }

    private static DeviceStateReader open(byte[] b) throws IOException {
        return DeviceStateReader.openForInspection(Channels.newChannel(new ByteArrayInputStream(b)), null, Set.of());
    }

    private static void readAll(byte[] b) throws IOException {
        try (DeviceStateReader r = open(b)) {
            SectionInfo s;
            while ((s = r.nextSection()) != null) {
                if (s.envelope()) {
                    Envelope e = r.envelope();
                    r.readEnvelopePayload(java.lang.foreign.Arena.ofAuto().allocate(Math.max(1, e.payloadLength())).asSlice(0, e.payloadLength()));
                } else {
                    FieldReader f = r.fields();
                    while (f.next()) {
                        f.skip();
                    }
                }
            }
        }
    }

    /** Inserts extension bytes at the end of the header and fixes the header length. */
    private static byte[] withExtension(byte[] stream, byte[] extension) {
        int h = (stream[12] & 0xff) | (stream[13] & 0xff) << 8;
        byte[] b = new byte[stream.length + extension.length];
        System.arraycopy(stream, 0, b, 0, h);
        System.arraycopy(extension, 0, b, h, extension.length);
        System.arraycopy(stream, h, b, h + extension.length, stream.length - h);
        int nh = h + extension.length;
        b[12] = (byte) nh;
        b[13] = (byte) (nh >>> 8);
        return b;
    }

    private static final Body ONE_SECTION = w -> {
        w.beginSection(1, 1, true).int32(1, 7);
        w.endSection();
    };

    @Test
    void nonCriticalHeaderExtensionEntriesShouldBeKeptAndCriticalOnesRefused() throws IOException {
        byte[] base = plain(ONE_SECTION);
        byte[] two = withExtension(base, new byte[] {0x01, (byte) 0x80, 1, 0, 2, 0, 'h', 'i', 0x02, (byte) 0x80, 3, 0, 0, 0});
        try (DeviceStateReader r = open(two)) {
            assertEquals(2, r.header().extensions().size());
            assertArrayEquals(new byte[] {'h', 'i'}, r.header().extensions().getFirst().value());
            assertEquals(3, r.header().extensions().get(1).version());
        }
        readAll(two);
        StreamFormatException critical = assertThrows(StreamFormatException.class, () -> open(withExtension(base, new byte[] {1, 0, 1, 1, 0, 0})));
        assertTrue(critical.getMessage().contains("critical"), critical.getMessage());
        assertThrows(StreamFormatException.class, () -> open(withExtension(base, new byte[] {1, 0, 1, 0, 9, 0, 1})), "an entry overrunning the header");
        assertThrows(StreamFormatException.class, () -> open(withExtension(base, new byte[] {1, 0, 1})), "a truncated entry header");
        assertThrows(StreamFormatException.class, () -> open(withExtension(base, new byte[] {1, 0, 0, 0, 0, 0})), "entry version 0");
        assertThrows(StreamFormatException.class, () -> open(withExtension(base, new byte[] {1, 0, 1, 2, 0, 0})), "an undefined entry flag");
    }

    @Test
    void aSectionIdShouldAppearOnlyOnce() throws IOException {
        byte[] b = plain(w -> {
            w.beginSection(5, 1, false).int32(1, 1);
            w.endSection();
            w.beginSection(5, 2, false).int32(1, 2);
            w.endSection();
        });
        StreamFormatException e = assertThrows(StreamFormatException.class, () -> readAll(b));
        assertTrue(e.getMessage().contains("second time"), e.getMessage());
    }

    @Test
    void aRepeatedTagShouldBeRefusedEvenWhenUnknownOrHigh() throws IOException {
        for (int tag : new int[] {3, 63, 64, 4000}) {
            byte[] b = plain(w -> {
                w.beginSection(1, 1, false).int32(tag, 1).int32(tag, 2);
                w.endSection();
            });
            StreamFormatException e = assertThrows(StreamFormatException.class, () -> readAll(b), "tag " + tag);
            assertTrue(e.getMessage().contains("appears twice"), e.getMessage());
        }
        readAll(plain(w -> {
            FieldWriter f = w.beginSection(1, 1, false).int32(1, 1);
            f.beginRecord(2).int32(1, 1).endRecord().beginRecord(3).int32(1, 1).endRecord();
            w.endSection();
        }));
    }

    @Test
    void anEnvelopeShouldHoldExactlyThreeFields() throws IOException {
        byte[] good = plain(w -> w.writeEnvelope(9, 1, false, "example.com/acme", 1, java.lang.foreign.MemorySegment.ofArray(new byte[] {1, 2})));
        readAll(good);
        byte[] fourth = plain(w -> {
            w.beginSection(9, 1, false).string(1, "example.com/acme").int32(2, 1).bytes(3, new byte[] {1, 2}).int32(4, 0);
            w.endSection();
        });
        // The same fields under the ENVELOPE flag: set it by hand (no digests to recompute).
        int h = (fourth[12] & 0xff) | (fourth[13] & 0xff) << 8;
        fourth[h + 1] = (byte) StreamLayout.SECTION_ENVELOPE;
        StreamFormatException e = assertThrows(StreamFormatException.class, () -> readAll(fourth));
        assertTrue(e.getMessage().contains("exactly three fields"), e.getMessage());
    }

    /** A chain of records nested {@code depth} deep inside an array of records. */
    private static byte[] nested(int depth) throws IOException {
        return plain(w -> {
            FieldWriter f = w.beginSection(1, 1, false).beginRecordArray(1, 1).beginElement();
            for (int i = 1; i < depth; i++) {
                f.beginRecord(1);
            }
            f.int32(2, 42);
            for (int i = 1; i < depth; i++) {
                f.endRecord();
            }
            f.endRecord().endArray();
            w.endSection();
        });
    }

    /** A stream without digests whose one section has exactly this body (a format the writer refuses to produce). */
    private static byte[] rawSection(byte[] body) throws IOException {
        byte[] empty = plain(w -> { });
        int h = (empty[12] & 0xff) | (empty[13] & 0xff) << 8;
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(h + 12 + 4 + body.length + 4 + 8).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.put(empty, 0, h).put((byte) 0x53).put((byte) 0).putShort((short) 1).putInt(1).putInt(0)
                .putInt(body.length).put(body).putInt(0).put((byte) 0x54).put((byte) 0).putShort((short) 0).putInt(1);
        return b.array();
    }

    @Test
    void anArrayOfRecordsShouldCountAsOneLevelWhenReadAndWhenSkipped() throws IOException {
        byte[] deepest = nested(32);
        readAll(deepest);
        try (DeviceStateReader r = open(deepest)) {
            r.nextSection();
            r.skipSection();
            r.finish();
        }
        // One more record around the array: depth 33, refused when read and when skipped.
        int h = (deepest[12] & 0xff) | (deepest[13] & 0xff) << 8;
        int len = (deepest[h + 12] & 0xff) | (deepest[h + 13] & 0xff) << 8;
        byte[] inner = java.util.Arrays.copyOfRange(deepest, h + 16, h + 16 + len);
        byte[] body = new byte[3 + inner.length + 3];
        body[0] = 7;
        body[2] = (byte) FieldType.RECORD.code();
        System.arraycopy(inner, 0, body, 3, inner.length);
        byte[] tooDeep = rawSection(body);
        StreamFormatException read = assertThrows(StreamFormatException.class, () -> readAll(tooDeep));
        assertTrue(read.getMessage().contains("nesting deeper than 32"), read.getMessage());
        StreamFormatException skipped = assertThrows(StreamFormatException.class, () -> {
            try (DeviceStateReader r = open(tooDeep)) {
                r.nextSection();
                FieldReader f = r.fields();
                f.next();
                f.skip();
            }
        });
        assertTrue(skipped.getMessage().contains("nesting deeper than 32"), skipped.getMessage());
        assertThrows(IllegalStateException.class, () -> nested(33), "the writer counts like the reader");
    }
}
