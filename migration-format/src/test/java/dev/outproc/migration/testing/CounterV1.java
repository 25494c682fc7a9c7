package dev.outproc.migration.testing;

import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.DeviceStateWriter;
import dev.outproc.migration.stream.Envelope;
import dev.outproc.migration.stream.FieldReader;
import dev.outproc.migration.stream.SectionInfo;
import dev.outproc.migration.stream.StreamFormatException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/** Version 1 of the example counter device: writes and reads format version 1 only. */
public final class CounterV1 {
    private CounterV1() {}

    /**
     * Saves state as format version 1.
     *
     * @param s state
     * @param w writer
     * @throws IOException on failure
     */
    public static void save(CounterState s, DeviceStateWriter w) throws IOException {
        w.beginSection(1, 1, true).int16(1, s.queueSize()).int64(2, s.counter()).string(3, s.label());
        w.endSection();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ram = arena.allocate(s.ram().length);
            MemorySegment.copy(s.ram(), 0, ram, ValueLayout.JAVA_BYTE, 0, s.ram().length);
            w.beginSection(2, 1, true).bytes(1, ram);
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
     * Loads state; unknown skippable sections and unknown fields are skipped, unknown must-understand sections refused.
     *
     * @param r reader positioned after the header
     * @return the state (only after the trailer verified)
     * @throws IOException if the stream is refused
     */
    public static CounterState load(DeviceStateReader r) throws IOException {
        int queueSize = -1;
        long counter = 0;
        String label = null;
        byte[] ram = null;
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
        return new CounterState(queueSize, counter, label, 0, ram, 0, new long[0], List.of(), acme);
    }
}
