package dev.outproc.vfio.virtio;

import dev.outproc.migration.stream.ArrayReader;
import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.DeviceStateWriter;
import dev.outproc.migration.stream.FieldReader;
import dev.outproc.migration.stream.FieldWriter;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The state of a {@link VirtioPciDevice}'s transport at a stopped point: what the driver programmed through the
 * common configuration, the ring positions of every queue, the ISR, the configuration generation and the MSI-X
 * state a client does not carry itself. The device's own state (a virtio-blk's geometry, its statistics) travels
 * next to it in the same migration-format stream.
 *
 * <p>In a stream it is one section, {@code virtio_pci} (migration-format/docs/integration.md, "virtio over PCI"),
 * written by {@link #write} and read by {@link #read}; every field is required, records in queue order.
 *
 * @param deviceFeatureSelect {@code device_feature_select}
 * @param driverFeatureSelect {@code driver_feature_select}
 * @param driverFeatures the features the driver wrote (negotiated once FEATURES_OK is set)
 * @param deviceStatus {@code device_status}
 * @param queueSelect {@code queue_select}
 * @param configMsixVector {@code config_msix_vector}
 * @param configGeneration {@code config_generation} (8 bits)
 * @param isr the ISR status bits not read yet
 * @param msixControl the MSI-X capability's message control word (enable, function mask)
 * @param msixTable the MSI-X table as BAR reads return it (16 bytes per vector: address, data, vector control)
 * @param queues one record per queue
 */
public record VirtioPciState(int deviceFeatureSelect, int driverFeatureSelect, long driverFeatures, int deviceStatus,
                             int queueSelect, int configMsixVector, int configGeneration, int isr, int msixControl,
                             byte[] msixTable, List<Queue> queues) {
    /** Version of the {@code virtio_pci} section. */
    public static final int SECTION_VERSION = 1;

    /** Copies the queue list. */
    public VirtioPciState {
        queues = List.copyOf(queues);
        msixTable = msixTable.clone();
    }

    /**
     * One queue's registers and ring position.
     *
     * @param index the queue
     * @param size {@code queue_size}
     * @param enabled {@code queue_enable}
     * @param msixVector {@code queue_msix_vector}
     * @param descAddr {@code queue_desc}
     * @param driverAddr {@code queue_driver}
     * @param deviceAddr {@code queue_device}
     * @param running whether the ring ran (the driver set DRIVER_OK with the queue enabled); the positions below
     *        matter only then
     * @param nextAvail split: the next avail index (16-bit, free running); packed: the next slot to read
     * @param nextUsed split: the next used index; packed: the next slot to write
     * @param availWrap packed: the device's avail wrap counter
     * @param usedWrap packed: the device's used wrap counter
     */
    public record Queue(int index, int size, boolean enabled, int msixVector, long descAddr, long driverAddr,
                        long deviceAddr, boolean running, int nextAvail, int nextUsed, boolean availWrap, boolean usedWrap) {
    }

    /**
     * Writes the state as one section.
     *
     * @param w the stream
     * @param sectionId the section id the device's format class gives it
     * @throws IOException when writing fails
     */
    public void write(DeviceStateWriter w, int sectionId) throws IOException {
        FieldWriter f = w.beginSection(sectionId, SECTION_VERSION, true);
        f.int32(1, deviceFeatureSelect).int32(2, driverFeatureSelect).int64(3, driverFeatures).int8(4, deviceStatus)
                .int16(5, queueSelect).int16(6, configMsixVector).int8(7, configGeneration).int8(8, isr)
                .int16(9, msixControl).bytes(10, msixTable);
        f.beginRecordArray(11, queues.size());
        for (Queue q : queues) {
            f.beginElement().int16(1, q.index()).int16(2, q.size()).bool(3, q.enabled()).int16(4, q.msixVector())
                    .int64(5, q.descAddr()).int64(6, q.driverAddr()).int64(7, q.deviceAddr()).bool(8, q.running())
                    .int16(9, q.nextAvail()).int16(10, q.nextUsed()).bool(11, q.availWrap()).bool(12, q.usedWrap())
                    .endRecord();
        }
        f.endArray();
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
        r.requireVersion(SECTION_VERSION, SECTION_VERSION);
        long[] v = new long[10];
        boolean[] seen = new boolean[12];
        byte[] table = null;
        List<Queue> queues = new ArrayList<>();
        FieldReader f = r.fields();
        while (f.next()) {
            int tag = f.tag();
            switch (tag) {
                case 1, 2 -> v[tag - 1] = Integer.toUnsignedLong(f.int32());
                case 3 -> v[2] = f.int64();
                case 4, 7, 8 -> v[tag - 1] = Byte.toUnsignedInt(f.int8());
                case 5, 6, 9 -> v[tag - 1] = Short.toUnsignedInt(f.int16());
                case 10 -> table = f.bytes();
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
                (int) v[8], table, queues);
    }

    private static Queue readQueue(FieldReader e) throws IOException {
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
        return new Queue((int) v[1], (int) v[2], v[3] != 0, (int) v[4], v[5], v[6], v[7], v[8] != 0, (int) v[9], (int) v[10],
                v[11] != 0, v[12] != 0);
    }
}
