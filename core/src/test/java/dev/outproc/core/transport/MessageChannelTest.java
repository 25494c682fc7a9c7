package dev.outproc.core.transport;

import dev.outproc.core.fd.OpenFds;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.internal.linux.Linux;
import dev.outproc.core.memory.MemFd;
import dev.outproc.core.memory.SharedMapping;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class MessageChannelTest {
    @TempDir
    Path dir;

    private static MemorySegment bytes(int... values) {
        MemorySegment s = Arena.ofAuto().allocate(values.length);
        for (int i = 0; i < values.length; i++) {
            s.set(ValueLayout.JAVA_BYTE, i, (byte) values[i]);
        }
        return s;
    }

    /** Lazily opened JDK resources (random sources and the like) are not ours to count: open them first. */
    @org.junit.jupiter.api.BeforeAll
    static void warmUp() throws Exception {
        MessageChannel.Pair pair = MessageChannel.pair();
        try (MessageChannel a = pair.channel(); MessageChannel b = MessageChannel.adopt(pair.peerFd());
             OwnedFd e = OwnedFd.of(Linux.eventfd(0, Linux.EFD_CLOEXEC))) {
            a.write(bytes(1), List.of(e));
            b.readFully(Arena.ofAuto().allocate(1), 1).close();
            a.peerCredentials();
        }
    }

    @Test
    void memfdPassedOverSocketShouldBeMappedByReceiver() throws Exception {
        Path socket = dir.resolve("s.sock");
        try (UnixListener listener = UnixListener.bind(socket)) {
            CompletableFuture<Long> received = CompletableFuture.supplyAsync(() -> {
                try (MessageChannel server = listener.accept()) {
                    MemorySegment header = Arena.ofAuto().allocate(4);
                    try (ReceivedFds fds = server.readFully(header, 1);
                         OwnedFd memfd = fds.take(0);
                         SharedMapping map = SharedMapping.map(memfd.get(), 0, 8192, true)) {
                        assertEquals(0x0D0C0B0A, header.get(ValueLayout.JAVA_INT_UNALIGNED, 0));
                        long value = map.segment().get(ValueLayout.JAVA_LONG, 4096);
                        map.segment().set(ValueLayout.JAVA_LONG, 0, ~value);
                        return value;
                    }
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }, r -> Thread.ofPlatform().start(r));
            try (MessageChannel client = MessageChannel.connect(socket);
                 OwnedFd memfd = MemFd.create("shared", 8192);
                 SharedMapping map = SharedMapping.map(memfd.get(), 0, 8192, true)) {
                map.segment().set(ValueLayout.JAVA_LONG, 4096, 0xCAFEBABE_12345678L);
                client.write(bytes(0x0A, 0x0B, 0x0C, 0x0D), List.of(memfd));
                assertEquals(0xCAFEBABE_12345678L, received.get(30, TimeUnit.SECONDS));
                assertEquals(~0xCAFEBABE_12345678L, map.segment().get(ValueLayout.JAVA_LONG, 0));
            }
        }
    }

    @Test
    void thousandFdsInBatchesShouldLeaveFdCountUnchanged() throws Exception {
        int before = OpenFds.count();
        var beforeFds = OpenFds.snapshot();
        MessageChannel.Pair pair = MessageChannel.pair();
        try (MessageChannel a = pair.channel(); MessageChannel b = MessageChannel.adopt(pair.peerFd())) {
            int sent = 0;
            int batch = 0;
            while (sent < 1000) {
                int n = Math.min(1000 - sent, 1 + (batch * 37) % MessageChannel.MAX_FDS_PER_MESSAGE);
                List<OwnedFd> fds = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    fds.add(OwnedFd.of(Linux.eventfd(0, Linux.EFD_CLOEXEC)));
                }
                MemorySegment message = bytes(n, batch & 0xff);
                a.write(message, fds);
                OwnedFd.closeAll(fds);
                MemorySegment in = Arena.ofAuto().allocate(2);
                try (ReceivedFds got = b.readFully(in, MessageChannel.MAX_FDS_PER_MESSAGE)) {
                    assertEquals(n, got.count(), "batch " + batch);
                    assertEquals(n, in.get(ValueLayout.JAVA_BYTE, 0) & 0xff);
                }
                sent += n;
                batch++;
            }
            assertEquals(0, b.unexpectedFdCount());
        }
        assertEquals(before, OpenFds.settle(before), () -> "open fds after 1000 sent and received, new: " + OpenFds.newSince(beforeFds));
    }

    @Test
    void shouldCloseFdsThatArriveUnexpectedOrBeyondTheLimit() throws Exception {
        int before = OpenFds.count();
        var beforeFds = OpenFds.snapshot();
        MessageChannel.Pair pair = MessageChannel.pair();
        try (MessageChannel a = pair.channel(); MessageChannel b = MessageChannel.adopt(pair.peerFd())) {
            try (OwnedFd e1 = OwnedFd.of(Linux.eventfd(0, Linux.EFD_CLOEXEC));
                 OwnedFd e2 = OwnedFd.of(Linux.eventfd(0, Linux.EFD_CLOEXEC));
                 OwnedFd e3 = OwnedFd.of(Linux.eventfd(0, Linux.EFD_CLOEXEC))) {
                a.write(bytes(1, 2, 3, 4), List.of(e1, e2, e3));
                a.write(bytes(5, 6), List.of(e1));
            }
            MemorySegment in = Arena.ofAuto().allocate(4);
            try (ReceivedFds got = b.readFully(in, 1)) {
                assertEquals(1, got.count());
                assertEquals(2, got.dropped());
            }
            b.readFully(Arena.ofAuto().allocate(2));
            assertEquals(1, b.unexpectedFdCount());
        }
        assertEquals(before, OpenFds.settle(before), () -> "new: " + OpenFds.newSince(beforeFds));
    }

    @Test
    void theKernelMaximumOfFdsShouldArriveAndExtrasBeClosedWithoutLeaks() throws Exception {
        int before = OpenFds.count();
        var beforeFds = OpenFds.snapshot();
        MessageChannel.Pair pair = MessageChannel.pair();
        try (MessageChannel a = pair.channel(); MessageChannel b = MessageChannel.adopt(pair.peerFd())) {
            List<OwnedFd> fds = new ArrayList<>();
            for (int i = 0; i < MessageChannel.MAX_FDS_PER_MESSAGE; i++) {
                fds.add(OwnedFd.of(Linux.eventfd(0, Linux.EFD_CLOEXEC)));
            }
            a.write(bytes(1, 2), fds);
            OwnedFd.closeAll(fds);
            try (ReceivedFds got = b.readFully(Arena.ofAuto().allocate(2), 8)) {
                assertEquals(8, got.count());
                assertEquals(MessageChannel.MAX_FDS_PER_MESSAGE - 8, got.dropped());
            }
        }
        assertEquals(before, OpenFds.settle(before), () -> "new: " + OpenFds.newSince(beforeFds));
    }

    @Test
    void closeShouldWakeABlockedReader() throws Exception {
        MessageChannel.Pair pair = MessageChannel.pair();
        try (OwnedFd other = pair.peerFd()) {
            MessageChannel a = pair.channel();
            CompletableFuture<Throwable> reader = CompletableFuture.supplyAsync(() -> {
                try {
                    a.readFully(Arena.ofAuto().allocate(12));
                    return null;
                } catch (Throwable t) {
                    return t;
                }
            }, r -> Thread.ofPlatform().start(r));
            Thread.sleep(100);
            a.close();
            assertTrue(reader.get(10, TimeUnit.SECONDS) instanceof PeerClosedException);
        }
    }

    @Test
    void shouldReportCleanCloseAndTruncatedMessage() throws Exception {
        MessageChannel.Pair pair = MessageChannel.pair();
        try (MessageChannel a = pair.channel(); MessageChannel b = MessageChannel.adopt(pair.peerFd())) {
            a.write(bytes(1, 2, 3));
            a.close();
            PeerClosedException truncated = assertThrows(PeerClosedException.class, () -> b.readFully(Arena.ofAuto().allocate(12)));
            assertEquals(3, truncated.bytesRead());
            PeerClosedException clean = assertThrows(PeerClosedException.class, () -> b.readFully(Arena.ofAuto().allocate(12)));
            assertEquals(0, clean.bytesRead());
        }
    }

    @Test
    void shouldExposePeerCredentials() throws Exception {
        MessageChannel.Pair pair = MessageChannel.pair();
        try (MessageChannel a = pair.channel(); OwnedFd other = pair.peerFd()) {
            PeerCredentials c = a.peerCredentials();
            assertEquals(ProcessHandle.current().pid(), c.pid());
            assertTrue(c.uid() >= 0);
        }
    }

    @Test
    void shouldRefuseToReplaceANonSocketFile() throws Exception {
        Path file = dir.resolve("not-a-socket");
        java.nio.file.Files.writeString(file, "data");
        TransportException e = assertThrows(TransportException.class, () -> UnixListener.bind(file));
        assertTrue(e.getMessage().contains("not a socket"));
    }

    @Test
    void readTimeoutShouldBeATypedError() throws Exception {
        MessageChannel.Pair pair = MessageChannel.pair();
        try (MessageChannel a = pair.channel(); OwnedFd other = pair.peerFd()) {
            a.setReadTimeoutMillis(100);
            TransportException e = assertThrows(TransportException.class, () -> a.readFully(Arena.ofAuto().allocate(4)));
            assertTrue(e.getMessage().contains("timed out"), e.getMessage());
        }
    }

    @Test
    void aReadTimeoutShouldNotTakeTheFdsOfThePreviousMessageAgain() throws Exception {
        MessageChannel.Pair pair = MessageChannel.pair();
        try (MessageChannel a = pair.channel(); MessageChannel b = MessageChannel.adopt(pair.peerFd());
             OwnedFd memfd = MemFd.create("passed", 4096)) {
            b.write(Arena.ofAuto().allocate(4), List.of(memfd));
            try (ReceivedFds received = a.readFully(Arena.ofAuto().allocate(4), 1)) {
                OwnedFd kept = received.all().getFirst();
                int number = kept.get();
                a.setReadTimeoutMillis(100);
                assertThrows(TransportException.class, () -> a.readFully(Arena.ofAuto().allocate(4), 1));
                assertTrue(java.nio.file.Files.exists(Path.of("/proc/self/fd/" + number)),
                        "the timed-out read closed fd " + number + ", which the previous message delivered");
            }
        }
    }

    @Test
    void writeTimeoutShouldBeATypedErrorWhenThePeerDoesNotRead() throws Exception {
        MessageChannel.Pair pair = MessageChannel.pair();
        try (MessageChannel a = pair.channel(); OwnedFd other = pair.peerFd()) {
            a.setWriteTimeoutMillis(100);
            MemorySegment chunk = Arena.ofAuto().allocate(64 * 1024);
            WriteTimeoutException e = assertThrows(WriteTimeoutException.class, () -> {
                for (int i = 0; i < 10_000; i++) {
                    a.write(chunk);
                }
            });
            assertTrue(e.getMessage().contains("does not read"), e.getMessage());
            assertTrue(e.sentBytes() < e.messageBytes(), e.getMessage());
        }
    }
}
