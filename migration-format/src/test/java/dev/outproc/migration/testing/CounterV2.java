package dev.outproc.migration.testing;

import dev.outproc.migration.stream.ArrayReader;
import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.DeviceStateWriter;
import dev.outproc.migration.stream.Envelope;
import dev.outproc.migration.stream.FieldReader;
import dev.outproc.migration.stream.FieldWriter;
import dev.outproc.migration.stream.SectionInfo;
import dev.outproc.migration.stream.StreamFormatException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * Version 2 of the example counter device: adds field 4 (flags, default 0) to section 1, a skippable statistics
 * section 3 and a must-understand rings section 4. Writes version 2, or version 1 when the handshake asks for it.
 */
public final class CounterV2 {
    private CounterV2() {}

    /**
     * Saves state in the writer's agreed format version.
     *
     * @param s state
     * @param w writer
     * @throws IOException on failure
     */
    public static void save(CounterState s, DeviceStateWriter w) throws IOException {
        if (w.formatVersion() == 1) {
            // Downgrade: exactly the version-1 layout; what version 1 cannot express is dropped.
            CounterV1.save(s, w);
            return;
        }
        w.beginSection(1, 1, true).int16(1, s.queueSize()).int64(2, s.counter()).string(3, s.label()).int32(4, s.flags());
        w.endSection();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ram = arena.allocate(s.ram().length);
            MemorySegment.copy(s.ram(), 0, ram, ValueLayout.JAVA_BYTE, 0, s.ram().length);
            w.beginSection(2, 1, true).bytes(1, ram);
            w.endSection();
            w.beginSection(3, 1, false).int64(1, s.requests()).int64Array(2, s.latencyHistogram());
            w.endSection();
            FieldWriter f = w.beginSection(4, 1, true).beginRecordArray(1, s.rings().size());
            for (CounterState.Ring ring : s.rings()) {
                f.beginElement().int16(1, ring.index()).int16(2, ring.size()).int16(3, ring.nextAvail()).int16(4, ring.nextUsed()).endRecord();
            }
            f.endArray();
            w.endSection();
            if (s.acmeExtras() != null) {
                MemorySegment acme = arena.allocate(Math.max(1, s.acmeExtras().length)).asSlice(0, s.acmeExtras().length);
                MemorySegment.copy(s.acmeExtras(), 0, acme, ValueLayout.JAVA_BYTE, 0, s.acmeExtras().length);
                w.writeEnvelope(100, 1, false, CounterState.ACME, 3, acme);
            }
        }
        w.finish();
    }

    /**
     * Loads state written by version 1 or 2.
     *
     * @param r reader positioned after the header
     * @return the state (only after the trailer verified)
     * @throws IOException if the stream is refused
     */
    public static CounterState load(DeviceStateReader r) throws IOException {
        int queueSize = -1;
        long counter = 0;
        String label = null;
        int flags = 0;
        byte[] ram = null;
        long requests = 0;
        long[] histogram = new long[0];
        List<CounterState.Ring> rings = new ArrayList<>();
        byte[] acme = null;
        SectionInfo s;
        while ((s = r.nextSection()) != null) {
            switch (s.id()) {
                case 1 -> {
                    r.requireVersion(1, 1);
                    FieldReader f = r.fields();
                    while (f.next()) {
                        switch (f.tag()) {
                            case 1 -> queueSize = f.int16() & 0xffff;
                            case 2 -> counter = f.int64();
                            case 3 -> label = f.string();
                            case 4 -> flags = f.int32();
                            default -> f.skip();
                        }
                    }
                }
                case 2 -> {
                    r.requireVersion(1, 1);
                    FieldReader f = r.fields();
                    while (f.next()) {
                        if (f.tag() == 1) {
                            ram = f.bytes();
                        } else {
                            f.skip();
                        }
                    }
                }
                case 3 -> {
                    r.requireVersion(1, 1);
                    FieldReader f = r.fields();
                    while (f.next()) {
                        switch (f.tag()) {
                            case 1 -> requests = f.int64();
                            case 2 -> histogram = f.array().toLongArray();
                            default -> f.skip();
                        }
                    }
                }
                case 4 -> {
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
                            int[] v = new int[4];
                            while (e.next()) {
                                if (e.tag() >= 1 && e.tag() <= 4) {
                                    v[e.tag() - 1] = e.int16() & 0xffff;
                                } else {
                                    e.skip();
                                }
                            }
                            rings.add(new CounterState.Ring(v[0], v[1], v[2], v[3]));
                        }
                    }
                }
                case 100 -> {
                    Envelope e = r.envelope();
                    if (e.vendorId().equals(CounterState.ACME) && e.schemaVersion() <= 3 && e.payloadLength() <= 4096) {
                        try (Arena arena = Arena.ofConfined()) {
                            MemorySegment p = arena.allocate(Math.max(1, e.payloadLength())).asSlice(0, e.payloadLength());
                            r.readEnvelopePayload(p);
                            acme = p.toArray(ValueLayout.JAVA_BYTE);
                        }
                    }
                }
                default -> r.skipSection();
            }
        }
        r.finish();
        if (queueSize < 0 || label == null || ram == null) {
            throw new StreamFormatException("counter stream lacks config or memory: queueSize=" + queueSize + " label=" + label);
        }
        return new CounterState(queueSize, counter, label, flags, ram, requests, histogram, List.copyOf(rings), acme);
    }
}
