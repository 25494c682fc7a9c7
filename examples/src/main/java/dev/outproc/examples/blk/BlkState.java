package dev.outproc.examples.blk;

import dev.outproc.migration.handshake.HandshakeAgreement;
import dev.outproc.migration.stream.ArrayReader;
import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.DeviceStateWriter;
import dev.outproc.migration.stream.FieldReader;
import dev.outproc.migration.stream.FieldWriter;
import dev.outproc.migration.stream.SectionInfo;

import java.io.IOException;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.util.ArrayList;
import java.util.List;

/**
 * The state of a virtio-blk device in the shared format class {@code virtio-spec.org/pci/virtio-blk/state}
 * (migration-format/docs/integration.md, section 5): what every implementation of the class writes and
 * reads, whatever its storage. Sections: 1 device (must-understand; version 2 adds {@code writeback}),
 * 2 virtqueues (must-understand), 3 statistics (skippable, format version 2 only).
 *
 * @param capacitySectors capacity in 512-byte sectors
 * @param blkSize block size
 * @param numQueues request queues
 * @param readOnly read-only device
 * @param deviceFeatures features offered
 * @param driverFeatures features negotiated
 * @param deviceStatus virtio status byte
 * @param configGeneration configuration generation
 * @param writeback writeback cache mode
 * @param queues ring positions at the stop
 * @param requests requests served
 * @param bytesRead bytes read
 * @param bytesWritten bytes written
 */
public record BlkState(long capacitySectors, int blkSize, int numQueues, boolean readOnly, long deviceFeatures,
                       long driverFeatures, int deviceStatus, int configGeneration, boolean writeback,
                       List<Queue> queues, long requests, long bytesRead, long bytesWritten) {
    /** Section ids of the format class. */
    static final int DEVICE = 1;
    static final int VIRTQUEUES = 2;
    static final int STATISTICS = 3;

    /**
     * One ring's position.
     *
     * @param index ring index
     * @param size ring size
     * @param enabled enabled at the stop
     * @param nextAvail next available index
     * @param nextUsed next used index
     */
    public record Queue(int index, int size, boolean enabled, int nextAvail, int nextUsed) {
    }

    /**
     * Writes the stream with the version the handshake agreed on.
     *
     * @param out where the stream goes (not closed)
     * @param agreement the handshake's result
     * @throws IOException when writing fails
     */
    public void write(WritableByteChannel out, HandshakeAgreement agreement) throws IOException {
        try (DeviceStateWriter w = DeviceStateWriter.open(out, agreement)) {
            writeDevice(w);
            writeQueues(w);
            writeStatistics(w);
            w.finish();
        }
    }

    /**
     * Writes the device section (1) in the version the stream's format version has.
     *
     * @param w the stream
     * @throws IOException when writing fails
     */
    public void writeDevice(DeviceStateWriter w) throws IOException {
        boolean v2 = w.formatVersion() >= 2;
        FieldWriter d = w.beginSection(DEVICE, v2 ? 2 : 1, true);
        d.int64(1, capacitySectors).int32(2, blkSize).int16(3, numQueues).bool(4, readOnly)
                .int64(5, deviceFeatures).int64(6, driverFeatures).int8(7, deviceStatus).int8(8, configGeneration);
        if (v2) {
            d.bool(9, writeback);
        }
        w.endSection();
    }

    /**
     * Writes the virtqueues section (2).
     *
     * @param w the stream
     * @throws IOException when writing fails
     */
    public void writeQueues(DeviceStateWriter w) throws IOException {
        FieldWriter q = w.beginSection(VIRTQUEUES, 1, true).beginRecordArray(1, queues.size());
        for (Queue queue : queues) {
            q.beginElement().int16(1, queue.index()).int16(2, queue.size()).bool(3, queue.enabled())
                    .int16(4, queue.nextAvail()).int16(5, queue.nextUsed()).endRecord();
        }
        q.endArray();
        w.endSection();
    }

    /**
     * Writes the statistics section (3) when the format version has it (2 and later).
     *
     * @param w the stream
     * @throws IOException when writing fails
     */
    public void writeStatistics(DeviceStateWriter w) throws IOException {
        if (w.formatVersion() >= 2) {
            w.beginSection(STATISTICS, 1, false).int64(1, requests).int64(2, bytesRead).int64(3, bytesWritten);
            w.endSection();
        }
    }

    /** Reads a section of the format class that is not virtio-blk's own (a transport's). */
    @FunctionalInterface
    public interface OtherSection {
        /**
         * Reads or skips the section the reader stands at.
         *
         * @param reader the stream
         * @param section the section
         * @throws IOException when the section is malformed
         */
        void read(DeviceStateReader reader, SectionInfo section) throws IOException;
    }

    /**
     * Reads and verifies a stream (digests, MAC, trailer) before returning anything.
     *
     * @param in where the stream comes from, to its end
     * @param agreement the handshake's result
     * @return the state
     * @throws IOException when the stream is malformed, tampered with, or of an unknown must-understand section
     */
    public static BlkState read(ReadableByteChannel in, HandshakeAgreement agreement) throws IOException {
        try (DeviceStateReader r = DeviceStateReader.open(in, agreement)) {
            BlkState s = readSections(r, (reader, section) -> reader.skipSection());
            r.finish();
            return s;
        }
    }

    /**
     * Reads every section of an open stream up to its trailer (not verified yet: call {@link DeviceStateReader#finish()}
     * before using the result). A second device section replaces the first (one sent during PRE_COPY and again at
     * the stop).
     *
     * @param r the stream
     * @param other reads the sections that are not virtio-blk's own
     * @return the state
     * @throws IOException when a section is malformed or the device section is missing
     */
    public static BlkState readSections(DeviceStateReader r, OtherSection other) throws IOException {
        long capacity = 0;
        int blkSize = 512;
        int numQueues = 1;
        boolean readOnly = false;
        long deviceFeatures = 0;
        long driverFeatures = 0;
        int status = 0;
        int generation = 0;
        boolean writeback = true;
        List<Queue> queues = new ArrayList<>();
        long requests = 0;
        long bytesRead = 0;
        long bytesWritten = 0;
        boolean sawDevice = false;
        {
            SectionInfo s;
            while ((s = r.nextSection()) != null) {
                switch (s.id()) {
                    case DEVICE -> {
                        r.requireVersion(1, 2);
                        sawDevice = true;
                        FieldReader f = r.fields();
                        while (f.next()) {
                            switch (f.tag()) {
                                case 1 -> capacity = f.int64();
                                case 2 -> blkSize = f.int32();
                                case 3 -> numQueues = Short.toUnsignedInt(f.int16());
                                case 4 -> readOnly = f.bool();
                                case 5 -> deviceFeatures = f.int64();
                                case 6 -> driverFeatures = f.int64();
                                case 7 -> status = Byte.toUnsignedInt(f.int8());
                                case 8 -> generation = Byte.toUnsignedInt(f.int8());
                                case 9 -> writeback = f.bool();
                                default -> f.skip();
                            }
                        }
                    }
                    case VIRTQUEUES -> {
                        r.requireVersion(1, 1);
                        FieldReader f = r.fields();
                        while (f.next()) {
                            if (f.tag() != 1) {
                                f.skip();
                                continue;
                            }
                            ArrayReader array = f.array();
                            while (array.hasNext()) {
                                FieldReader e = array.nextRecord();
                                int index = 0;
                                int size = 0;
                                boolean enabled = false;
                                int avail = 0;
                                int used = 0;
                                while (e.next()) {
                                    switch (e.tag()) {
                                        case 1 -> index = Short.toUnsignedInt(e.int16());
                                        case 2 -> size = Short.toUnsignedInt(e.int16());
                                        case 3 -> enabled = e.bool();
                                        case 4 -> avail = Short.toUnsignedInt(e.int16());
                                        case 5 -> used = Short.toUnsignedInt(e.int16());
                                        default -> e.skip();
                                    }
                                }
                                queues.add(new Queue(index, size, enabled, avail, used));
                            }
                        }
                    }
                    case STATISTICS -> {
                        r.requireVersion(1, 1);
                        FieldReader f = r.fields();
                        while (f.next()) {
                            switch (f.tag()) {
                                case 1 -> requests = f.int64();
                                case 2 -> bytesRead = f.int64();
                                case 3 -> bytesWritten = f.int64();
                                default -> f.skip();
                            }
                        }
                    }
                    default -> other.read(r, s);
                }
            }
        }
        if (!sawDevice) {
            throw new IOException("virtio-blk state without its device section");
        }
        return new BlkState(capacity, blkSize, numQueues, readOnly, deviceFeatures, driverFeatures, status, generation,
                writeback, List.copyOf(queues), requests, bytesRead, bytesWritten);
    }
}
