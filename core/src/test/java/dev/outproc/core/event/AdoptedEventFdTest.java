package dev.outproc.core.event;

import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.internal.linux.Linux;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

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

    private static final long FULL = 0xffff_ffff_ffff_fffeL;
    private static final Duration PROMPTLY = Duration.ofSeconds(5);

    /** What a hostile peer does with its copy of the file description: clear O_NONBLOCK. */
    private static void clearNonBlock(OwnedFd peerCopy) throws Exception {
        int flags = Linux.fcntl(peerCopy.get(), Linux.F_GETFL, 0);
        Linux.fcntl(peerCopy.get(), Linux.F_SETFL, flags & ~Linux.O_NONBLOCK);
        assertEquals(0, Linux.fcntl(peerCopy.get(), Linux.F_GETFL, 0) & Linux.O_NONBLOCK);
    }

    /** The peer fills the counter to its maximum through its own copy. */
    private static void fill(OwnedFd peerCopy) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment value = arena.allocate(8, 8);
            value.set(ValueLayout.JAVA_LONG, 0, FULL);
            assertEquals(8, Linux.write(peerCopy.get(), value, 8));
        }
    }

    @Test
    void signalShouldNotBlockWhenThePeerClearsNonBlockAfterAdoptAndFillsTheCounter() throws Exception {
        try (EventFd peerSide = EventFd.create(); OwnedFd peerCopy = peerSide.owner().duplicate();
                EventFd ours = EventFd.adopt(peerSide.owner().duplicate())) {
            clearNonBlock(peerCopy); // after adopt: the mode recorded at adopt is non-blocking
            fill(peerCopy);
            assertFalse(assertTimeoutPreemptively(PROMPTLY, () -> ours.trySignal()),
                    "a full counter is reported as not written, never waited on");
            assertEquals(FULL, assertTimeoutPreemptively(PROMPTLY, ours::drain));
            assertEquals(0, assertTimeoutPreemptively(PROMPTLY, ours::drain), "empty and blocking: 0 at once");
            assertTrue(assertTimeoutPreemptively(PROMPTLY, () -> ours.trySignal()));
        }
    }

    @Test
    void signalShouldNotBlockOnOurOwnEventfdOnceItsFdWasHandedToAPeerThatFillsIt() throws Exception {
        try (EventFd ours = EventFd.create(); OwnedFd sentToPeer = ours.owner().duplicate()) {
            assertTrue(ours.isShared());
            clearNonBlock(sentToPeer);
            fill(sentToPeer);
            assertFalse(assertTimeoutPreemptively(PROMPTLY, () -> ours.trySignal()));
            assertFalse(assertTimeoutPreemptively(PROMPTLY, () -> ours.trySignal(5)));
        }
    }

    @Test
    void drainShouldNotBlockWhenThePeerClearsNonBlockOnAnEmptyCounter() throws Exception {
        try (EventFd peerSide = EventFd.create(); OwnedFd peerCopy = peerSide.owner().duplicate();
                EventFd ours = EventFd.adopt(peerSide.owner().duplicate())) {
            clearNonBlock(peerCopy);
            assertEquals(0, assertTimeoutPreemptively(PROMPTLY, ours::drain));
        }
    }
}
