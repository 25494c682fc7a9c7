package dev.outproc.core.transport;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link CleanExit} closes what it owns newest first, waits for a resource being opened when the stop comes, and
 * closes a resource opened after it. {@link CleanExit#close()} runs the same path as the shutdown hook.
 */
@Timeout(30)
class CleanExitTest {
    private final List<String> closed = new CopyOnWriteArrayList<>();

    private AutoCloseable named(String name) {
        return () -> closed.add(name);
    }

    @Test
    void shouldCloseNewestFirstAndRunStopActionsInPlace() throws IOException {
        try (CleanExit exit = new CleanExit("test")) {
            exit.open(() -> named("endpoint"));
            exit.onStop(() -> closed.add("disconnect"));
            exit.own(named("listener"));
        }
        assertEquals(List.of("listener", "disconnect", "endpoint"), closed);
    }

    @Test
    void aFailingCloseShouldNotKeepTheOthersOpen() throws IOException {
        try (CleanExit exit = new CleanExit("test")) {
            exit.own(named("first"));
            exit.own(() -> {
                throw new IOException("refused");
            });
            exit.own(named("last"));
        }
        assertEquals(List.of("last", "first"), closed);
    }

    @Test
    void aStopWhileAResourceIsBeingOpenedShouldWaitForItAndCloseIt() throws Exception {
        CleanExit exit = new CleanExit("test");
        CountDownLatch opening = new CountDownLatch(1);
        CountDownLatch mayFinish = new CountDownLatch(1);
        CompletableFuture<Void> opener = CompletableFuture.runAsync(() -> {
            try {
                exit.open(() -> {
                    opening.countDown();
                    awaitUninterruptibly(mayFinish);
                    return named("socket");
                });
            } catch (IOException stopping) {
                // expected: the stop came while opening
            }
        });
        assertTrue(opening.await(10, TimeUnit.SECONDS));
        CompletableFuture<Void> stop = CompletableFuture.runAsync(exit::close);
        Thread.sleep(100);
        assertTrue(closed.isEmpty(), "the stop waits while the socket is being opened");
        mayFinish.countDown();
        stop.get(10, TimeUnit.SECONDS);
        assertEquals(List.of("socket"), closed, "the socket opened during the stop is closed by it");
        assertTrue(opener.isDone());
    }

    private static void awaitUninterruptibly(CountDownLatch latch) {
        try {
            latch.await();
        } catch (InterruptedException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void aResourceOpenedAfterTheStopShouldBeClosedAtOnce() {
        CleanExit exit = new CleanExit("test");
        exit.close();
        assertThrows(IOException.class, () -> exit.own(named("late")));
        assertThrows(IOException.class, () -> exit.open(() -> named("never")));
        assertEquals(List.of("late"), closed);
    }
}
