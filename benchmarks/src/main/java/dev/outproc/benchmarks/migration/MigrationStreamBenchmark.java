package dev.outproc.benchmarks.migration;

import dev.outproc.migration.handshake.HandshakeAgreement;
import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.DeviceStateWriter;
import dev.outproc.migration.stream.FieldReader;
import dev.outproc.migration.stream.FieldWriter;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Encode and decode of a large device state (blobs plus many small fields) through the migration stream, with no
 * integrity, with per-section SHA-256 digests and transcript, and with digests plus the handshake MAC; next to a plain
 * {@link MemorySegment#copy} of the blob bytes, which is the floor any format has to pay.
 *
 * <p>The channels are in-memory segments, so the numbers are the codec's, not a pipe's.
 * Run: {@code java --enable-native-access=ALL-UNNAMED -jar benchmarks/target/benchmarks.jar MigrationStream -prof gc}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx4g"})
public class MigrationStreamBenchmark {
    /** Blob state in MiB, split into 4 MiB blobs. */
    @Param({"256"})
    public int blobMiB;

    /** Number of small fields (alternating INT64, INT32, BOOL) in one section. */
    @Param({"10000"})
    public int smallFields;

    /** NONE: no digests; DIGESTS: SHA-256 per section and transcript; MAC: digests and HMAC keyed by the handshake. */
    @Param({"NONE", "DIGESTS", "MAC"})
    public String integrity;

    private static final long BLOB_BYTES = 4L * 1024 * 1024;

    private Arena arena;
    private MemorySegment[] blobs;
    private MemorySegment[] restored;
    private MemorySegment copyTarget;
    private MemorySegment streamBytes;
    private long streamLength;
    private SegmentChannels.Sink sink;
    private SegmentChannels.Source source;
    private HandshakeAgreement agreement;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        arena = Arena.ofShared();
        int count = (int) (blobMiB * 1024L * 1024 / BLOB_BYTES);
        blobs = new MemorySegment[count];
        restored = new MemorySegment[count];
        for (int i = 0; i < count; i++) {
            blobs[i] = arena.allocate(BLOB_BYTES, 4096);
            restored[i] = arena.allocate(BLOB_BYTES, 4096);
            for (long o = 0; o < BLOB_BYTES; o += 8) {
                blobs[i].set(ValueLayout.JAVA_LONG, o, (o + i) * 0x9E3779B97F4A7C15L);
            }
        }
        copyTarget = arena.allocate(BLOB_BYTES * count, 4096);
        // Stream overhead is small: chunk headers, field headers, digests.
        streamBytes = arena.allocate(BLOB_BYTES * count + 16L * smallFields + (1 << 20), 4096);
        sink = new SegmentChannels.Sink(streamBytes);
        byte[] nonce = new byte[32];
        Arrays.fill(nonce, (byte) 7);
        HandshakeAgreement.Builder b = HandshakeAgreement.builder("outproc.dev/bench/state", "outproc.dev/bench/state/v", 1).nonce(nonce);
        switch (integrity) {
            case "NONE" -> b.digests(false);
            case "DIGESTS" -> b.digests(true);
            case "MAC" -> b.digests(true).macKey(new byte[32]);
            default -> throw new IllegalArgumentException(integrity);
        }
        agreement = b.build();
        encode();
        streamLength = sink.position();
        source = new SegmentChannels.Source(streamBytes, streamLength);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        arena.close();
    }

    /** Writes the whole state; returns the stream length. */
    @Benchmark
    public long encode() throws IOException {
        sink.reset();
        try (DeviceStateWriter w = DeviceStateWriter.open(sink, agreement)) {
            FieldWriter f = w.beginSection(1, 1, true);
            for (int i = 1; i <= smallFields; i++) {
                int tag = ((i - 1) % 65535) + 1;
                switch (i % 3) {
                    case 0 -> f.int64(tag, i * 31L);
                    case 1 -> f.int32(tag, i);
                    default -> f.bool(tag, (i & 4) != 0);
                }
            }
            w.endSection();
            FieldWriter r = w.beginSection(2, 1, true);
            for (int i = 0; i < blobs.length; i++) {
                r.bytes(i + 1, blobs[i]);
            }
            w.endSection();
            w.finish();
        }
        return sink.position();
    }

    /** Reads and verifies the whole state into destination segments; returns a checksum of the small fields. */
    @Benchmark
    public long decode() throws IOException {
        source.reset();
        long sum = 0;
        try (DeviceStateReader r = DeviceStateReader.open(source, agreement)) {
            r.nextSection();
            FieldReader f = r.fields();
            while (f.next()) {
                sum += f.type() == dev.outproc.migration.stream.FieldType.BOOL ? (f.bool() ? 1 : 0) : f.longValue();
            }
            r.nextSection();
            FieldReader b = r.fields();
            while (b.next()) {
                b.bytesInto(restored[b.tag() - 1]);
            }
            r.finish();
        }
        return sum;
    }

    /** The floor: copy the blob bytes once, segment to segment. */
    @Benchmark
    public MemorySegment copyBaseline() {
        long off = 0;
        for (MemorySegment blob : blobs) {
            MemorySegment.copy(blob, 0, copyTarget, off, BLOB_BYTES);
            off += BLOB_BYTES;
        }
        return copyTarget;
    }
}
