package dev.outproc.core.fd;

import dev.outproc.core.internal.linux.Linux;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

@Timeout(value = 30, unit = TimeUnit.SECONDS)
class FdChannelTest {
    @Test
    void bytesShouldCrossAPipeLargerThanItsBuffer() throws Exception {
        OwnedFd[] pipe = FdChannel.pipe();
        byte[] data = new byte[1 << 20];
        new java.util.SplittableRandom(5).nextBytes(data);
        try (FdChannel in = FdChannel.of(pipe[0])) {
            CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
                try (FdChannel out = FdChannel.of(pipe[1])) {
                    out.write(ByteBuffer.wrap(data));
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }, r -> Thread.ofPlatform().start(r));
            ByteBuffer got = ByteBuffer.allocate(data.length + 1);
            while (in.read(got) >= 0) {
                // until end of stream
            }
            writer.get(10, TimeUnit.SECONDS);
            assertEquals(data.length, got.position());
            assertArrayEquals(data, java.util.Arrays.copyOf(got.array(), data.length));
        }
    }

    @Test
    void closeShouldEndAReadThatASilentPeerWouldBlockForever() throws Exception {
        OwnedFd[] pipe = FdChannel.pipe();
        try (OwnedFd silentWriter = pipe[1]) {
            FdChannel in = FdChannel.of(pipe[0]);
            CompletableFuture<Throwable> reader = CompletableFuture.supplyAsync(() -> {
                try {
                    in.read(ByteBuffer.allocate(16));
                    return null;
                } catch (Throwable t) {
                    return t;
                }
            }, r -> Thread.ofPlatform().start(r));
            Thread.sleep(50);
            in.close();
            assertInstanceOf(AsynchronousCloseException.class, reader.get(5, TimeUnit.SECONDS));
        }
    }

    /** What a hostile peer does with its copy of our file description: clear O_NONBLOCK. */
    private static void clearNonBlock(OwnedFd peerCopy) throws Exception {
        int flags = Linux.fcntl(peerCopy.get(), Linux.F_GETFL, 0);
        Linux.fcntl(peerCopy.get(), Linux.F_SETFL, flags & ~Linux.O_NONBLOCK);
    }

    /**
     * Starts {@code io} on a platform thread, waits until it waits for readiness inside the channel, then
     * closes the channel and expects the close to end it.
     */
    private static void closeShouldEnd(FdChannel channel, java.util.concurrent.Callable<?> io) {
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
            AtomicReference<Thread> worker = new AtomicReference<>();
            CompletableFuture<Throwable> running = CompletableFuture.supplyAsync(() -> {
                try {
                    io.call();
                    return null;
                } catch (Throwable t) {
                    return t;
                }
            }, r -> worker.set(Thread.ofPlatform().daemon(true).start(r)));
            // Closing before the I/O waits would test a closed channel, not the end of a blocked wait.
            while (!waitsInChannel(worker.get())) {
                Thread.sleep(5);
            }
            channel.close();
            assertInstanceOf(AsynchronousCloseException.class, running.get(5, TimeUnit.SECONDS));
        });
    }

    private static boolean waitsInChannel(Thread t) {
        if (t == null) {
            return false;
        }
        for (StackTraceElement e : t.getStackTrace()) {
            if (e.getClassName().equals(FdChannel.class.getName()) && e.getMethodName().equals("awaitReady")) {
                return true;
            }
        }
        return false;
    }

    @Test
    void closeShouldEndAReadAfterThePeerClearedNonBlockOnItsCopy() throws Exception {
        OwnedFd[] pipe = FdChannel.pipe();
        try (OwnedFd silentWriter = pipe[1]; OwnedFd peerCopyOfOurEnd = pipe[0].duplicate()) {
            FdChannel in = FdChannel.of(pipe[0]);
            clearNonBlock(peerCopyOfOurEnd);
            closeShouldEnd(in, () -> in.read(ByteBuffer.allocate(16)));
        }
    }

    @Test
    void closeShouldEndAWriteAfterThePeerClearedNonBlockAndStoppedReading() throws Exception {
        OwnedFd[] pipe = FdChannel.pipe();
        try (OwnedFd idleReader = pipe[0]; OwnedFd peerCopyOfOurEnd = pipe[1].duplicate()) {
            FdChannel out = FdChannel.of(pipe[1]);
            clearNonBlock(peerCopyOfOurEnd);
            closeShouldEnd(out, () -> out.write(ByteBuffer.allocate(1 << 20))); // more than the pipe holds
        }
    }
}
