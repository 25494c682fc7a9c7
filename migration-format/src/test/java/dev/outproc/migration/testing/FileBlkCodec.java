package dev.outproc.migration.testing;

import dev.outproc.migration.stream.ArrayReader;
import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.DeviceStateWriter;
import dev.outproc.migration.stream.FieldReader;
import dev.outproc.migration.stream.FieldWriter;
import dev.outproc.migration.stream.SectionInfo;
import dev.outproc.migration.stream.StreamFormatException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/** One implementation's codec of the virtio-blk format class: straightforward, fields in tag order. */
public final class FileBlkCodec {
    private FileBlkCodec() {}

    /**
     * Saves in the writer's agreed version.
     *
     * @param s state
     * @param w writer
     * @throws IOException on failure
     */
    public static void save(BlkState s, DeviceStateWriter w) throws IOException {
        int v = w.formatVersion();
        FieldWriter dev = w.beginSection(1, v >= 2 ? 2 : 1, true)
                .int64(1, s.capacity()).int32(2, s.blkSize()).int16(3, s.numQueues()).bool(4, s.readOnly())
                .int64(5, s.deviceFeatures()).int64(6, s.driverFeatures()).int8(7, s.deviceStatus()).int8(8, s.configGeneration());
        if (v >= 2) {
            dev.bool(9, s.writeback());
        }
        w.endSection();
        FieldWriter q = w.beginSection(2, 1, true).beginRecordArray(1, s.queues().size());
        for (BlkState.Queue queue : s.queues()) {
            q.beginElement().int16(1, queue.index()).int16(2, queue.size()).bool(3, queue.enabled())
                    .int16(4, queue.nextAvail()).int16(5, queue.nextUsed()).endRecord();
        }
        q.endArray();
        w.endSection();
        if (v >= 2) {
            w.beginSection(3, 1, false).int64(1, s.requests()).int64(2, s.bytesRead()).int64(3, s.bytesWritten());
            w.endSection();
        }
    }

    /**
     * Loads (stages) the state; the caller verifies the trailer (readVerified).
     *
     * @param r reader
     * @return staged state
     * @throws IOException if refused
     */
    public static BlkState load(DeviceStateReader r) throws IOException {
        long capacity = -1;
        int blkSize = 512;
        int numQueues = 1;
        boolean readOnly = false;
        long devF = 0;
        long drvF = 0;
        int status = 0;
        int generation = 0;
        boolean writeback = true;
        List<BlkState.Queue> queues = new ArrayList<>();
        long req = 0;
        long rd = 0;
        long wr = 0;
        SectionInfo s;
        while ((s = r.nextSection()) != null) {
            switch (s.id()) {
                case 1 -> {
                    r.requireVersion(1, 2);
                    FieldReader f = r.fields();
                    while (f.next()) {
                        switch (f.tag()) {
                            case 1 -> capacity = f.int64();
                            case 2 -> blkSize = f.int32();
                            case 3 -> numQueues = f.int16() & 0xffff;
                            case 4 -> readOnly = f.bool();
                            case 5 -> devF = f.int64();
                            case 6 -> drvF = f.int64();
                            case 7 -> status = f.int8() & 0xff;
                            case 8 -> generation = f.int8() & 0xff;
                            case 9 -> writeback = f.bool();
                            default -> f.skip();
                        }
                    }
                }
                case 2 -> {
                    r.requireVersion(1, 1);
                    FieldReader f = r.fields();
                    while (f.next()) {
                        if (f.tag() != 1) {
                            f.skip();
                            continue;
                        }
                        ArrayReader a = f.array();
                        while (a.hasNext()) {
                            FieldReader e = a.nextRecord();
                            int index = 0;
                            int size = 0;
                            boolean enabled = false;
                            int avail = 0;
                            int used = 0;
                            while (e.next()) {
                                switch (e.tag()) {
                                    case 1 -> index = e.int16() & 0xffff;
                                    case 2 -> size = e.int16() & 0xffff;
                                    case 3 -> enabled = e.bool();
                                    case 4 -> avail = e.int16() & 0xffff;
                                    case 5 -> used = e.int16() & 0xffff;
                                    default -> e.skip();
                                }
                            }
                            queues.add(new BlkState.Queue(index, size, enabled, avail, used));
                        }
                    }
                }
                case 3 -> {
                    r.requireVersion(1, 1);
                    FieldReader f = r.fields();
                    while (f.next()) {
                        switch (f.tag()) {
                            case 1 -> req = f.int64();
                            case 2 -> rd = f.int64();
                            case 3 -> wr = f.int64();
                            default -> f.skip();
                        }
                    }
                }
                default -> r.skipSection();
            }
        }
        if (capacity < 0) {
            throw new StreamFormatException("virtio-blk state without capacity");
        }
        return new BlkState(capacity, blkSize, numQueues, readOnly, devF, drvF, status, generation, writeback, List.copyOf(queues), req, rd, wr);
    }
}
