package dev.outproc.migration.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.outproc.migration.handshake.HandshakeAgreement;
import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.DeviceStateWriter;
import dev.outproc.migration.stream.FieldWriter;
import dev.outproc.migration.stream.MigrationStreamException;
import dev.outproc.migration.stream.StreamFormatException;
import dev.outproc.migration.stream.UnsupportedSectionException;
import dev.outproc.migration.testing.CounterState;
import dev.outproc.migration.testing.GoldenCorpus;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Schema-driven reading (registry-format.md §3.3–3.5): defaults, required fields and sections, typed arrays and
 * records, must-understand subsections, and declarative load-time checks such as num_queues against the queue array.
 */
class StateSchemaReaderTest {
    private static final String BLK = "virtio-spec.org/pci/virtio-blk";
    private static final String BLK_STATE = "virtio-spec.org/pci/virtio-blk/state";

    interface Body {
        void write(DeviceStateWriter w) throws IOException;
    }

    private static byte[] stream(String model, String format, int version, Body body) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (DeviceStateWriter w = DeviceStateWriter.open(out, HandshakeAgreement.builder(model, format, version).build())) {
            body.write(w);
            w.finish();
        }
        return out.toByteArray();
    }

    private static FormatVersion schema(String model, String format, int version) throws IOException {
        return Registry.builtin().model(model).orElseThrow().formatClasses().stream().filter(f -> f.id().equals(format))
                .findFirst().orElseThrow().version(version).orElseThrow();
    }

    private static Map<String, Map<String, Object>> read(byte[] stream, FormatVersion v) throws IOException {
        try (DeviceStateReader r = DeviceStateReader.openForInspection(java.nio.channels.Channels.newChannel(new ByteArrayInputStream(stream)), null, java.util.Set.of())) {
            return StateSchemaReader.read(r, v);
        }
    }

    /** A virtio-blk device section; the queue section then holds {@code queues} records. */
    private static Body blk(int numQueues, int queues, boolean withDefaults) {
        return blk(numQueues, queues, withDefaults, 0, true);
    }

    /**
     * A virtio-blk stream: device section (with a BYTES field {1, 2, 3} of tag {@code extraTag} when it is not 0),
     * then, if {@code withQueueSection}, the queue section holding {@code queues} records.
     */
    private static Body blk(int numQueues, int queues, boolean withDefaults, int extraTag, boolean withQueueSection) {
        return w -> {
            FieldWriter d = w.beginSection(1, 1, true).int64(1, 2048).int32(2, 512).int16(3, numQueues).bool(4, false)
                    .int64(5, 0x1_0000_1244L).int64(6, 0x1_0000_0000L).int8(7, 0x0f);
            if (withDefaults) {
                d.int8(8, 3);
            }
            if (extraTag != 0) {
                d.bytes(extraTag, new byte[] {1, 2, 3});
            }
            w.endSection();
            if (!withQueueSection) {
                return;
            }
            FieldWriter q = w.beginSection(2, 1, true).beginRecordArray(1, queues);
            for (int i = 0; i < queues; i++) {
                q.beginElement().int16(1, i).int16(2, 256).bool(3, true).int16(4, 40000 + i).int16(5, 7).endRecord();
            }
            q.endArray();
            w.endSection();
        };
    }

    @Test
    void goldenCounterStreamsShouldDecodeByTheirSchema() throws IOException {
        Map<String, Map<String, Object>> v2 = read(GoldenCorpus.counterV2(), schema(CounterState.MODEL, CounterState.FORMAT, 2));
        assertEquals("counter-0", v2.get("config").get("label"));
        assertEquals(5L, v2.get("config").get("flags"));
        assertEquals(CounterState.sample().rings().size(), ((List<?>) v2.get("rings").get("rings")).size());
        assertEquals("example.com/acme", v2.get("acme-extras").get("vendor"));
        Map<String, Map<String, Object>> v1 = read(GoldenCorpus.counterV1(), schema(CounterState.MODEL, CounterState.FORMAT, 1));
        assertEquals(v2.get("config").get("counter"), v1.get("config").get("counter"));
    }

    @Test
    void queueCountCheckShouldHoldForAConsistentDeviceAndFailOtherwise() throws IOException {
        FormatVersion v1 = schema(BLK, BLK_STATE, 1);
        Map<String, Map<String, Object>> ok = read(stream(BLK, BLK_STATE, 1, blk(2, 2, false)), v1);
        assertEquals(0L, ok.get("device").get("config_generation"), "absent: the registry's typed default");
        @SuppressWarnings("unchecked")
        Map<String, Object> q1 = (Map<String, Object>) ((List<?>) ok.get("virtqueues").get("queues")).get(1);
        assertEquals(40001L, q1.get("next_avail"), "int16 fields are unsigned unless the schema says signed");
        StreamFormatException e = assertThrows(StreamFormatException.class, () -> read(stream(BLK, BLK_STATE, 1, blk(2, 1, true)), v1));
        assertTrue(e.getMessage().contains("queue-count") && e.getMessage().contains("= 2") && e.getMessage().contains("= 1"), e.getMessage());
    }

    @Test
    void aMissingRequiredFieldOrSectionShouldBeRefused() throws IOException {
        FormatVersion v1 = schema(BLK, BLK_STATE, 1);
        byte[] noCapacity = stream(BLK, BLK_STATE, 1, w -> {
            w.beginSection(1, 1, true).int32(2, 512).int16(3, 0).bool(4, false).int64(5, 0).int64(6, 0).int8(7, 0);
            w.endSection();
            w.beginSection(2, 1, true).beginRecordArray(1, 0).endArray();
            w.endSection();
        });
        StreamFormatException f = assertThrows(StreamFormatException.class, () -> read(noCapacity, v1));
        assertTrue(f.getMessage().contains("capacity") && f.getMessage().contains("no default"), f.getMessage());
        byte[] noQueues = stream(BLK, BLK_STATE, 1, blk(0, 0, false, 0, false));
        StreamFormatException s = assertThrows(StreamFormatException.class, () -> read(noQueues, v1));
        assertTrue(s.getMessage().contains("required section virtqueues"), s.getMessage());
    }

    @Test
    void aKnownTagWithAnotherTypeShouldBeRefused() throws IOException {
        byte[] wrong = stream(BLK, BLK_STATE, 1, w -> {
            w.beginSection(1, 1, true).int32(1, 2048);
            w.endSection();
        });
        MigrationStreamException e = assertThrows(MigrationStreamException.class, () -> read(wrong, schema(BLK, BLK_STATE, 1)));
        assertTrue(e.getMessage().contains("tag 1 has type INT32, expected INT64"), e.getMessage());
    }

    @Test
    void anUnknownMustUnderstandSubsectionShouldBeRefusedAndAnUnknownPlainFieldSkipped() throws IOException {
        FormatVersion v1 = schema(BLK, BLK_STATE, 1);
        byte[] plainExtra = stream(BLK, BLK_STATE, 1, blk(1, 1, false, 200, true));
        assertEquals(1L, read(plainExtra, v1).get("device").get("num_queues"));
        byte[] subsection = stream(BLK, BLK_STATE, 1, blk(1, 1, false, 0x8001, true));
        UnsupportedSectionException e = assertThrows(UnsupportedSectionException.class, () -> read(subsection, v1));
        assertTrue(e.getMessage().contains("must-understand subsection"), e.getMessage());
    }

    @Test
    void aSubsectionKnownToTheSchemaShouldBeRead() throws IOException {
        FormatVersion v1 = schema(BLK, BLK_STATE, 1);
        SectionSchema dev = v1.section(1).orElseThrow();
        List<FieldSchema> fields = new java.util.ArrayList<>(dev.fields());
        fields.add(new FieldSchema(0x8001, "extra", "bytes", false, null, List.of(), null));
        FormatVersion withSub = new FormatVersion(1, List.of(new SectionSchema(dev.id(), dev.name(), dev.version(), true, false, fields),
                v1.section(2).orElseThrow()), v1.checks());
        byte[] subsection = stream(BLK, BLK_STATE, 1, blk(1, 1, false, 0x8001, true));
        assertArrayEquals(new byte[] {1, 2, 3}, (byte[]) read(subsection, withSub).get("device").get("extra"));
    }
}
