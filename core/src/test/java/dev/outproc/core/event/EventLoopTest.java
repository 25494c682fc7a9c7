package dev.outproc.core.event;

import dev.outproc.core.fd.OpenFds;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class EventLoopTest {
    @Test
    void eventFdSignalledFromOneThreadShouldWakeTheLoopInAnother() throws Exception {
        int before = OpenFds.count();
        try (EventLoop loop = EventLoop.start("test-loop"); EventFd kick = EventFd.create()) {
            CountDownLatch woke = new CountDownLatch(1);
            AtomicReference<Thread> handlerThread = new AtomicReference<>();
            AtomicLong value = new AtomicLong();
            loop.add(kick.owner(), events -> {
                handlerThread.set(Thread.currentThread());
                value.set(kick.drain());
                woke.countDown();
            });
            Thread signaller = Thread.ofPlatform().start(() -> {
                try {
                    kick.signal();
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            assertTrue(woke.await(10, TimeUnit.SECONDS), "loop was not woken");
            signaller.join();
            assertEquals(1, value.get());
            assertNotSame(signaller, handlerThread.get());
            assertNotSame(Thread.currentThread(), handlerThread.get());
        }
        assertEquals(before, OpenFds.settle(before));
    }

    @Test
    void cancelFromAnotherThreadShouldStopDispatchBeforeReturning() throws Exception {
        try (EventLoop loop = EventLoop.start("cancel-loop"); EventFd kick = EventFd.create()) {
            AtomicInteger calls = new AtomicInteger();
            CountDownLatch first = new CountDownLatch(1);
            EventLoop.Registration r = loop.add(kick.owner(), events -> {
                kick.drain();
                calls.incrementAndGet();
                first.countDown();
            });
            kick.signal();
            assertTrue(first.await(10, TimeUnit.SECONDS));
            r.cancel();
            int afterCancel = calls.get();
            kick.signal();
            CountDownLatch later = new CountDownLatch(1);
            loop.execute(later::countDown);
            assertTrue(later.await(10, TimeUnit.SECONDS));
            assertEquals(afterCancel, calls.get(), "handler ran after cancel returned");
        }
    }

    @Test
    void handlerFailureShouldNotStopTheLoop() throws Exception {
        try (EventLoop loop = EventLoop.start("failing-loop"); EventFd a = EventFd.create(); EventFd b = EventFd.create()) {
            CountDownLatch bRan = new CountDownLatch(1);
            loop.add(a.owner(), events -> {
                a.drain();
                throw new IllegalStateException("boom");
            });
            loop.add(b.owner(), events -> {
                b.drain();
                bRan.countDown();
            });
            a.signal();
            b.signal();
            assertTrue(bRan.await(10, TimeUnit.SECONDS));
            assertTrue(loop.isRunning());
        }
    }

    @Test
    void busyPollShouldRunPollersAndDispatchFds() throws Exception {
        try (EventLoop loop = EventLoop.start("busy-loop", EventLoop.Mode.BUSY_POLL); EventFd kick = EventFd.create()) {
            CountDownLatch polled = new CountDownLatch(1000);
            Runnable poller = polled::countDown;
            loop.addPoller(poller);
            assertTrue(polled.await(10, TimeUnit.SECONDS));
            loop.removePoller(poller);
            CountDownLatch woke = new CountDownLatch(1);
            loop.add(kick.owner(), events -> {
                kick.drain();
                woke.countDown();
            });
            kick.signal();
            assertTrue(woke.await(10, TimeUnit.SECONDS));
        }
    }

    @Test
    void awaitOnLoopShouldRunOnTheLoopThread() throws Exception {
        try (EventLoop loop = EventLoop.start("await-loop")) {
            AtomicReference<Thread> ran = new AtomicReference<>();
            loop.awaitOnLoop(() -> ran.set(Thread.currentThread()));
            assertEquals("await-loop", ran.get().getName());
            loop.close();
            assertFalse(loop.isRunning());
            AtomicReference<Thread> after = new AtomicReference<>();
            loop.awaitOnLoop(() -> after.set(Thread.currentThread()));
            assertSame(Thread.currentThread(), after.get(), "a closed loop runs the task in the caller");
        }
    }
}
