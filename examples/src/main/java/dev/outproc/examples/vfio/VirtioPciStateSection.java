package dev.outproc.examples.vfio;

import dev.outproc.migration.stream.ArrayReader;
import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.DeviceStateWriter;
import dev.outproc.migration.stream.FieldReader;
import dev.outproc.migration.stream.FieldWriter;
import dev.outproc.vfio.virtio.VirtioPciState;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The {@code virtio_pci} section of a migration-format stream (migration-format/docs/integration.md, "virtio over
 * PCI"): a {@link VirtioPciState} written and read with the same stream code every device of the examples uses.
 * Every field is required but field 12, the MSI-X pending-bit array, added later with a default: a stream without it
 * means no vector pending, and a reader that does not know it skips it. Queue records come in queue order.
 */
public final class VirtioPciStateSection {
    private VirtioPciStateSection() {
    }

    /**
     * Writes the state as one section.
     *
     * @param s the state
     * @param w the stream
     * @param sectionId the section id the device's format class gives it
     * @throws IOException when writing fails
     */
    public static void write(VirtioPciState s, DeviceStateWriter w, int sectionId) throws IOException {
        FieldWriter f = w.beginSection(sectionId, VirtioPciState.SECTION_VERSION, true);
        f.int32(1, s.deviceFeatureSelect()).int32(2, s.driverFeatureSelect()).int64(3, s.driverFeatures()).int8(4, s.deviceStatus())
                .int16(5, s.queueSelect()).int16(6, s.configMsixVector()).int8(7, s.configGeneration()).int8(8, s.isr())
                .int16(9, s.msixControl()).bytes(10, s.msixTable());
        f.beginRecordArray(11, s.queues().size());
        for (VirtioPciState.Queue q : s.queues()) {
            f.beginElement().int16(1, q.index()).int16(2, q.size()).bool(3, q.enabled()).int16(4, q.msixVector())
                    .int64(5, q.descAddr()).int64(6, q.driverAddr()).int64(7, q.deviceAddr()).bool(8, q.running())
                    .int16(9, q.nextAvail()).int16(10, q.nextUsed()).bool(11, q.availWrap()).bool(12, q.usedWrap())
                    .endRecord();
        }
        f.endArray();
        f.bytes(12, s.msixPending());
        w.endSection();
    }

    /**
     * Reads the section the reader stands at.
     *
     * @param r the stream, positioned at the {@code virtio_pci} section
     * @return the state
     * @throws IOException when the section is of another version, malformed or lacks a field
     */
    public static VirtioPciState read(DeviceStateReader r) throws IOException {
        r.requireVersion(VirtioPciState.SECTION_VERSION, VirtioPciState.SECTION_VERSION);
        long[] v = new long[10];
        boolean[] seen = new boolean[13];
        byte[] table = null;
        byte[] pending = new byte[0];
        List<VirtioPciState.Queue> queues = new ArrayList<>();
        FieldReader f = r.fields();
        while (f.next()) {
            int tag = f.tag();
            switch (tag) {
                case 1, 2 -> v[tag - 1] = Integer.toUnsignedLong(f.int32());
                case 3 -> v[2] = f.int64();
                case 4, 7, 8 -> v[tag - 1] = Byte.toUnsignedInt(f.int8());
                case 5, 6, 9 -> v[tag - 1] = Short.toUnsignedInt(f.int16());
                case 10 -> table = f.bytes();
                case 12 -> pending = f.bytes();
                case 11 -> {
                    ArrayReader array = f.array();
                    while (array.hasNext()) {
                        queues.add(readQueue(array.nextRecord()));
                    }
                }
                default -> {
                    f.skip();
                    continue;
                }
            }
            seen[tag] = true;
        }
        for (int tag = 1; tag <= 11; tag++) {
            if (!seen[tag]) {
                throw new IOException("virtio_pci section without field " + tag);
            }
        }
        return new VirtioPciState((int) v[0], (int) v[1], v[2], (int) v[3], (int) v[4], (int) v[5], (int) v[6], (int) v[7],
                (int) v[8], table, queues, pending);
    }

    private static VirtioPciState.Queue readQueue(FieldReader e) throws IOException {
        long[] v = new long[13];
        int seen = 0;
        while (e.next()) {
            int tag = e.tag();
            switch (tag) {
                case 1, 2, 4, 9, 10 -> v[tag] = Short.toUnsignedInt(e.int16());
                case 3, 8, 11, 12 -> v[tag] = e.bool() ? 1 : 0;
                case 5, 6, 7 -> v[tag] = e.int64();
                default -> {
                    e.skip();
                    continue;
                }
            }
            seen |= 1 << tag;
        }
        if (seen != 0x1FFE) {
            throw new IOException("virtio_pci queue record without every field, fields seen=0x" + Integer.toHexString(seen));
        }
        return new VirtioPciState.Queue((int) v[1], (int) v[2], v[3] != 0, (int) v[4], v[5], v[6], v[7], v[8] != 0, (int) v[9], (int) v[10],
                v[11] != 0, v[12] != 0);
    }
}
