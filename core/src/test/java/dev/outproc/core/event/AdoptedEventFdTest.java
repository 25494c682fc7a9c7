package dev.outproc.core.event;


import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** An eventfd adopted from a peer never blocks us, and the peer's own mode stays as the peer set it. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class AdoptedEventFdTest {
    @Test
    void aFullBlockingEventfdShouldNotBlockSignalNorAnEmptyOneDrain() throws Exception {
        try (EventFd peer = EventFd.createBlocking(); EventFd ours = EventFd.adopt(peer.owner().duplicate())) {
            assertEquals(0, ours.drain(), "empty: 0 at once, not a blocked read");
            peer.signal(0xffff_ffff_ffff_fffeL);
            ours.signal(); // would block on the full counter
            assertEquals(0xffff_ffff_ffff_fffeL, ours.drain());
            assertEquals(0, ours.drain());
        }
    }

    @Test
    void thePeersBlockingModeShouldStay() throws Exception {
        try (EventFd peer = EventFd.createBlocking(); EventFd ours = EventFd.adopt(peer.owner().duplicate())) {
            CompletableFuture<Long> waiting = CompletableFuture.supplyAsync(() -> {
                try {
                    return peer.await(); // blocks until we signal
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }, r -> Thread.ofPlatform().start(r));
            Thread.sleep(100);
            assertFalse(waiting.isDone(), "the peer's read still blocks: its mode was not changed");
            ours.signal();
            assertEquals(1, waiting.get(10, TimeUnit.SECONDS));
        }
    }

}
