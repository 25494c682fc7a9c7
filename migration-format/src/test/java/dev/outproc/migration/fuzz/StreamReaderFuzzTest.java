package dev.outproc.migration.fuzz;

import static org.junit.jupiter.api.Assertions.fail;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.outproc.migration.model.FormatVersion;
import dev.outproc.migration.model.Registry;
import dev.outproc.migration.model.StateSchemaReader;
import dev.outproc.migration.testing.CounterState;
import dev.outproc.migration.stream.ArrayReader;
import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.Envelope;
import dev.outproc.migration.stream.FieldReader;
import dev.outproc.migration.stream.MigrationStreamException;
import dev.outproc.migration.stream.SectionInfo;
import dev.outproc.migration.testing.CounterV2;
import dev.outproc.migration.testing.GoldenCorpus;
import dev.outproc.migration.testing.Streams;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.Channels;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.RepetitionInfo;

/**
 * Feeds arbitrary bytes to the stream reader, both through a generic walk that touches every field API and through
 * the example device's loader. The only exception allowed out is {@link MigrationStreamException}; anything else
 * (IndexOutOfBounds, OutOfMemory from a trusted length, a hang caught by Jazzer's timeout) is a finding. In a normal
 * {@code mvn test} the fuzz targets replay their seeds (the golden corpus); with {@code JAZZER_FUZZ=1} they fuzz.
 */
class StreamReaderFuzzTest {

    static void walk(byte[] data) throws IOException {
        DeviceStateReader r = DeviceStateReader.openForInspection(Channels.newChannel(new ByteArrayInputStream(data)), GoldenCorpus.MAC_KEY, Set.of());
        SectionInfo s;
        while ((s = r.nextSection()) != null) {
            if (s.envelope()) {
                Envelope e = r.envelope();
                if (e.payloadLength() <= 1 << 16) {
                    try (Arena arena = Arena.ofConfined()) {
                        r.readEnvelopePayload(arena.allocate(Math.max(1, e.payloadLength())).asSlice(0, e.payloadLength()));
                    }
                }
            } else if ((s.id() & 1) == 0) {
                r.skipSection();
            } else {
                fields(r.fields());
            }
        }
        r.finish();
    }

    private static void fields(FieldReader f) throws IOException {
        while (f.next()) {
            switch (f.type()) {
                case BOOL -> f.bool();
                case INT8, INT16, INT32, INT64 -> f.longValue();
                case STRING -> f.string();
                case BYTES -> {
                    long n = f.bytesLength();
                    if (n <= 1 << 16) {
                        try (Arena arena = Arena.ofConfined()) {
                            f.readBytesBody(arena.allocate(Math.max(1, n)).asSlice(0, n));
                        }
                    } else {
                        f.skipBytesBody();
                    }
                }
                case RECORD -> fields(f.record());
                case ARRAY -> {
                    ArrayReader a = f.array();
                    switch (a.elementType()) {
                        case INT8, INT16, INT32, INT64 -> {
                            if (a.count() < 1000) {
                                a.toLongArray();
                            } else {
                                a.skipRest();
                            }
                        }
                        case STRING -> {
                            while (a.hasNext()) {
                                a.nextString();
                            }
                        }
                        case RECORD -> {
                            while (a.hasNext()) {
                                fields(a.nextRecord());
                            }
                        }
                        default -> a.skipRest();
                    }
                }
                default -> f.skip();
            }
        }
    }

    private static void expectOnlyStreamExceptions(byte[] data) {
        try {
            walk(data);
        } catch (MigrationStreamException expected) {
            // a typed refusal
        } catch (IOException | RuntimeException e) {
            fail("reader threw " + e.getClass().getName() + ": " + e.getMessage(), e);
        }
        try {
            CounterV2.load(Streams.open(data, GoldenCorpus.agreement(2, "").build()));
        } catch (MigrationStreamException expected) {
            // a typed refusal
        } catch (IOException | RuntimeException e) {
            fail("device loader threw " + e.getClass().getName() + ": " + e.getMessage(), e);
        }
        try {
            StateSchemaReader.read(DeviceStateReader.openForInspection(Channels.newChannel(new ByteArrayInputStream(data)), GoldenCorpus.MAC_KEY, Set.of()),
                    COUNTER_V2);
        } catch (MigrationStreamException expected) {
            // a typed refusal
        } catch (IOException | RuntimeException e) {
            fail("schema reader threw " + e.getClass().getName() + ": " + e.getMessage(), e);
        }
    }

    private static final FormatVersion COUNTER_V2;

    static {
        try {
            COUNTER_V2 = Registry.builtin().model(CounterState.MODEL).orElseThrow().formatClass(CounterState.FORMAT).orElseThrow()
                    .version(2).orElseThrow();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @FuzzTest(maxDuration = "30s")
    void decodeArbitraryStream(byte[] data) {
        expectOnlyStreamExceptions(data);
    }

    /**
     * A local snapshot restore: a reader opened without a handshake ({@code openUnattested}) for the example model,
     * format versions 1 and 2, walking every section's fields. The field values are the generic walk's concern;
     * here the header checks and the framing without an agreement are.
     */
    @FuzzTest(maxDuration = "30s")
    void restoreArbitrarySnapshot(byte[] data) {
        try (DeviceStateReader r = DeviceStateReader.openUnattested(Channels.newChannel(new ByteArrayInputStream(data)),
                CounterState.MODEL, CounterState.FORMAT, 1, 2)) {
            SectionInfo s;
            while ((s = r.nextSection()) != null) {
                if (s.envelope()) {
                    r.skipSection();
                } else {
                    fields(r.fields());
                }
            }
            r.finish();
        } catch (MigrationStreamException expected) {
            // a typed refusal
        } catch (IOException | RuntimeException e) {
            fail("unattested reader threw " + e.getClass().getName() + ": " + e.getMessage(), e);
        }
    }

    /** Random multi-byte mutations of the corpus, a cheap complement that runs in every build. */
    @RepeatedTest(300)
    void randomMutationsOfTheCorpusShouldOnlyBeRefusedTyped(RepetitionInfo info) {
        long seed = 0xf0220000L + info.getCurrentRepetition();
        SplittableRandom r = new SplittableRandom(seed);
        String[] names = {"counter-v1.oms", "counter-v2.oms", "counter-v2-mac-signed.oms", "worked-example.oms"};
        byte[] b = Streams.golden(names[r.nextInt(names.length)]).clone();
        int edits = 1 + r.nextInt(8);
        for (int i = 0; i < edits; i++) {
            int at = r.nextInt(b.length);
            switch (r.nextInt(3)) {
                case 0 -> b[at] = (byte) r.nextInt(256);
                case 1 -> b[at] = (byte) 0xff;
                default -> b[at] = 0;
            }
        }
        try {
            expectOnlyStreamExceptions(b);
        } catch (AssertionError e) {
            throw new AssertionError("seed=" + seed + ": " + e.getMessage(), e);
        }
    }
}
