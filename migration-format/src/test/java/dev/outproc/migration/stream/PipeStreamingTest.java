package dev.outproc.migration.stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.outproc.migration.handshake.HandshakeAgreement;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.Pipe;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The stream over a real pipe, as SET_DEVICE_STATE_FD carries it: the pipe holds only a few KiB, so writer and reader
 * must stream concurrently; a state much larger than the pipe proves neither side buffers the whole state.
 */
class PipeStreamingTest {
    private static final HandshakeAgreement AGREEMENT = HandshakeAgreement.builder("example.org/pipe", "example.org/pipe/state", 1)
            .macKey(new byte[32]).build();

    @Test
    @Timeout(60)
    void largeStateShouldStreamThroughAPipe() throws Exception {
        long size = 48L * 1024 * 1024;
        Pipe pipe = Pipe.open();
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try (Arena arena = Arena.ofShared()) {
            MemorySegment ram = arena.allocate(size, 4096);
            for (long i = 0; i < size; i += 8) {
                ram.set(ValueLayout.JAVA_LONG, i, i ^ 0x5555_aaaa_3333_ccccL);
            }
            MemorySegment restored = arena.allocate(size, 4096);
            Future<StreamTrailer> writer = pool.submit(() -> {
                try (Pipe.SinkChannel sink = pipe.sink()) {
                    return DeviceStateWriter.write(sink, AGREEMENT, w -> {
                        w.beginSection(1, 1, true).int64(1, size).bytes(2, ram);
                        w.endSection();
                    });
                }
            });
            try (Pipe.SourceChannel source = pipe.source()) {
                long declared = DeviceStateReader.readVerified(source, AGREEMENT, r -> {
                    r.nextSection();
                    FieldReader f = r.fields();
                    f.next();
                    long n = f.int64();
                    f.next();
                    f.bytesInto(restored);
                    return n;
                });
                assertEquals(size, declared);
            }
            assertEquals(1, writer.get(30, TimeUnit.SECONDS).sectionCount());
            assertEquals(-1, ram.mismatch(restored));
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    @Timeout(30)
    void writerThatDiesMidStreamShouldLeaveTheReaderWithATruncationNotAHang() throws Exception {
        Pipe pipe = Pipe.open();
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try {
            Future<?> writer = pool.submit(() -> {
                try (Pipe.SinkChannel sink = pipe.sink(); DeviceStateWriter w = DeviceStateWriter.open(sink, AGREEMENT)) {
                    w.beginSection(1, 1, true).bytes(1, new byte[200_000]);
                    w.endSection();
                    // the back-end crashes here: no trailer, the fd is closed
                }
                return null;
            });
            try (Pipe.SourceChannel source = pipe.source()) {
                assertThrows(StreamTruncatedException.class, () -> DeviceStateReader.readVerified(source, AGREEMENT, r -> {
                    while (r.nextSection() != null) {
                        r.fields();
                    }
                    return null;
                }));
            }
            writer.get(10, TimeUnit.SECONDS);
        } finally {
            pool.shutdownNow();
        }
    }

}
