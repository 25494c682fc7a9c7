package dev.outproc.migration.testing;

import dev.outproc.migration.stream.ArrayReader;
import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.DeviceStateWriter;
import dev.outproc.migration.stream.FieldReader;
import dev.outproc.migration.stream.FieldType;
import dev.outproc.migration.stream.FieldWriter;
import dev.outproc.migration.stream.SectionInfo;
import dev.outproc.migration.stream.StreamFormatException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A second, independently written codec of the same format class: it writes fields in reverse tag order and always
 * includes the skippable statistics when allowed, and reads every section generically into a tag map. Only the format
 * class (docs/integration.md section 5) is shared with {@link FileBlkCodec}.
 */
public final class MemoryBlkCodec {
    private MemoryBlkCodec() {}

    /**
     * Saves in the writer's agreed version.
     *
     * @param s state
     * @param w writer
     * @throws IOException on failure
     */
    public static void save(BlkState s, DeviceStateWriter w) throws IOException {
        boolean v2 = w.formatVersion() >= 2;
        FieldWriter q = w.beginSection(2, 1, true).beginRecordArray(1, s.queues().size());
        for (BlkState.Queue queue : s.queues()) {
            q.beginElement().int16(5, queue.nextUsed()).int16(4, queue.nextAvail()).bool(3, queue.enabled())
                    .int16(2, queue.size()).int16(1, queue.index()).endRecord();
        }
        q.endArray();
        w.endSection();
        FieldWriter dev = w.beginSection(1, v2 ? 2 : 1, true);
        if (v2) {
            dev.bool(9, s.writeback());
        }
        dev.int8(8, s.configGeneration()).int8(7, s.deviceStatus()).int64(6, s.driverFeatures()).int64(5, s.deviceFeatures())
                .bool(4, s.readOnly()).int16(3, s.numQueues()).int32(2, s.blkSize()).int64(1, s.capacity());
        w.endSection();
        if (v2) {
            w.beginSection(3, 1, false).int64(3, s.bytesWritten()).int64(2, s.bytesRead()).int64(1, s.requests());
            w.endSection();
        }
    }

    private static Map<Integer, Long> scalars(FieldReader f) throws IOException {
        Map<Integer, Long> m = new HashMap<>();
        while (f.next()) {
            if (f.type() == FieldType.BOOL) {
                m.put(f.tag(), f.bool() ? 1L : 0L);
            } else if (f.type().isInteger()) {
                m.put(f.tag(), f.longValue());
            } else {
                f.skip();
            }
        }
        return m;
    }

    /**
     * Loads (stages) the state; the caller verifies the trailer (readVerified).
     *
     * @param r reader
     * @return staged state
     * @throws IOException if refused
     */
    public static BlkState load(DeviceStateReader r) throws IOException {
        Map<Integer, Long> dev = null;
        Map<Integer, Long> stats = Map.of();
        List<BlkState.Queue> queues = new ArrayList<>();
        SectionInfo s;
        while ((s = r.nextSection()) != null) {
            if (s.id() == 1) {
                r.requireVersion(1, 2);
                dev = scalars(r.fields());
            } else if (s.id() == 2) {
                r.requireVersion(1, 1);
                FieldReader f = r.fields();
                while (f.next()) {
                    if (f.tag() == 1 && f.type() == FieldType.ARRAY) {
                        ArrayReader a = f.array();
                        while (a.hasNext()) {
                            Map<Integer, Long> q = scalars(a.nextRecord());
                            queues.add(new BlkState.Queue((int) (q.getOrDefault(1, 0L) & 0xffff), (int) (q.getOrDefault(2, 0L) & 0xffff),
                                    q.getOrDefault(3, 0L) == 1, (int) (q.getOrDefault(4, 0L) & 0xffff), (int) (q.getOrDefault(5, 0L) & 0xffff)));
                        }
                    } else {
                        f.skip();
                    }
                }
            } else if (s.id() == 3 && s.version() == 1) {
                stats = scalars(r.fields());
            } else {
                r.skipSection();
            }
        }
        if (dev == null || !dev.containsKey(1)) {
            throw new StreamFormatException("virtio-blk state without the device section");
        }
        return new BlkState(dev.get(1), (int) (long) dev.getOrDefault(2, 512L), (int) (dev.getOrDefault(3, 1L) & 0xffff),
                dev.getOrDefault(4, 0L) == 1, dev.getOrDefault(5, 0L), dev.getOrDefault(6, 0L), (int) (dev.getOrDefault(7, 0L) & 0xff),
                (int) (dev.getOrDefault(8, 0L) & 0xff), dev.getOrDefault(9, 1L) == 1, List.copyOf(queues),
                stats.getOrDefault(1, 0L), stats.getOrDefault(2, 0L), stats.getOrDefault(3, 0L));
    }
}
