package dev.outproc.core.fd;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

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
}
