package dev.outproc.core.event;

import dev.outproc.core.fd.OpenFds;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

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

    @ParameterizedTest
    @EnumSource(EventLoop.Mode.class)
    void aTaskThatQueuesItselfForeverShouldNotStarveFdsNorKeepCloseWaiting(EventLoop.Mode mode) throws Exception {
        AtomicLong runs = new AtomicLong();
        EventFd kick = EventFd.create();
        EventLoop loop = EventLoop.start("flooded-loop", mode);
        try {
            CountDownLatch woke = new CountDownLatch(1);
            loop.add(kick.owner(), events -> {
                kick.drain();
                woke.countDown();
            });
            Runnable again = new Runnable() {
                @Override
                public void run() {
                    runs.incrementAndGet();
                    loop.execute(this);
                }
            };
            loop.execute(again);
            while (runs.get() < 10 * EventLoop.MAX_TASKS_PER_TURN) {
                Thread.onSpinWait();
            }
            kick.signal();
            assertTrue(woke.await(10, TimeUnit.SECONDS), "the kick was served between tasks");
        } finally {
            Thread closer = Thread.ofPlatform().start(loop::close);
            closer.join(10_000);
            assertFalse(closer.isAlive(), "close returned although the task keeps queueing itself");
            kick.close();
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

    @Test
    void anErrorFromAHandlerShouldCancelThatRegistrationOnlyAndKeepTheLoopServingOthers() throws Exception {
        try (EventLoop loop = EventLoop.start("error-loop"); EventFd hostile = EventFd.create();
             EventFd other = EventFd.create()) {
            AtomicInteger hostileCalls = new AtomicInteger();
            AtomicReference<Throwable> toldToTearDown = new AtomicReference<>();
            CountDownLatch torn = new CountDownLatch(1);
            loop.add(hostile.owner(), new EventLoop.Handler() {
                @Override
                public void ready(int events) throws Exception {
                    hostile.drain();
                    hostileCalls.incrementAndGet();
                    throw new OutOfMemoryError("simulated: a peer made this handler exhaust the heap");
                }

                @Override
                public void failed(Throwable failure) {
                    toldToTearDown.set(failure);
                    torn.countDown();
                }
            });
            hostile.signal();
            assertTrue(torn.await(10, TimeUnit.SECONDS), "the owner is told to tear down");
            assertTrue(toldToTearDown.get() instanceof OutOfMemoryError);
            assertTrue(loop.isRunning(), "the loop survives an Error from one handler");

            CountDownLatch otherRan = new CountDownLatch(1);
            loop.add(other.owner(), events -> {
                other.drain();
                otherRan.countDown();
            });
            hostile.signal(); // its registration is gone: no second call
            other.signal();
            assertTrue(otherRan.await(10, TimeUnit.SECONDS), "another peer's fd is still served");
            CountDownLatch turn = new CountDownLatch(1);
            loop.execute(turn::countDown);
            assertTrue(turn.await(10, TimeUnit.SECONDS));
            assertEquals(1, hostileCalls.get(), "the failed registration was cancelled");
        }
    }

    @Test
    void anErrorFromATaskShouldNotStopTheLoop() throws Exception {
        try (EventLoop loop = EventLoop.start("task-error-loop")) {
            loop.execute(() -> {
                throw new InternalError("simulated: a fault in an unsafe memory access");
            });
            CountDownLatch next = new CountDownLatch(1);
            loop.execute(next::countDown);
            assertTrue(next.await(10, TimeUnit.SECONDS), "the next task runs");
            assertTrue(loop.isRunning());
            IllegalStateException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
                    () -> loop.awaitOnLoop(() -> {
                        throw new StackOverflowError("simulated");
                    }));
            assertTrue(e.getCause() instanceof StackOverflowError, "awaitOnLoop hands the failure to its caller");
            assertTrue(loop.isRunning());
        }
    }

    @Test
    void aPollerThatThrowsAnErrorShouldBeRemovedAndTheLoopGoOn() throws Exception {
        try (EventLoop loop = EventLoop.start("poller-error-loop")) {
            AtomicInteger calls = new AtomicInteger();
            AtomicInteger wellBehaved = new AtomicInteger();
            loop.addPoller(() -> {
                calls.incrementAndGet();
                throw new OutOfMemoryError("simulated");
            });
            loop.addPoller(wellBehaved::incrementAndGet);
            // Turns are counted by the well-behaved poller that runs after the failing one on every turn (tasks
            // would not do: one turn runs every task queued meanwhile).
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (calls.get() == 0 && System.nanoTime() < deadline) {
                loop.execute(() -> { });
                Thread.sleep(1);
            }
            assertEquals(1, calls.get(), "the failing poller ran");
            int turnsSoFar = wellBehaved.get();
            while (wellBehaved.get() < turnsSoFar + 3 && System.nanoTime() < deadline) {
                loop.execute(() -> { });
                Thread.sleep(1);
            }
            assertTrue(wellBehaved.get() >= turnsSoFar + 3, "the loop went on turning: " + wellBehaved.get());
            assertTrue(loop.isRunning());
            assertEquals(1, calls.get(), "the failing poller ran once and was removed");
        }
    }

    @Test
    void awaitWithATimeoutShouldWithdrawATaskAStalledLoopNeverStarted() throws Exception {
        try (EventLoop loop = EventLoop.start("stalled-loop")) {
            CountDownLatch release = new CountDownLatch(1);
            CountDownLatch stalled = new CountDownLatch(1);
            loop.execute(() -> { // a handler a peer wedged
                stalled.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            assertTrue(stalled.await(10, TimeUnit.SECONDS));
            AtomicInteger ran = new AtomicInteger();
            java.util.concurrent.TimeoutException e = org.junit.jupiter.api.Assertions.assertThrows(
                    java.util.concurrent.TimeoutException.class,
                    () -> loop.awaitOnLoop(ran::incrementAndGet, java.time.Duration.ofMillis(300)));
            assertTrue(e.getMessage().contains("withdrawn"), e.getMessage());
            release.countDown();
            CountDownLatch after = new CountDownLatch(1);
            loop.execute(after::countDown);
            assertTrue(after.await(10, TimeUnit.SECONDS));
            assertEquals(0, ran.get(), "a withdrawn task never runs");
            loop.awaitOnLoop(ran::incrementAndGet, java.time.Duration.ofSeconds(10));
            assertEquals(1, ran.get());
        }
    }

    @Test
    void awaitWithATimeoutShouldReportATaskThatStartedAndStalls() throws Exception {
        try (EventLoop loop = EventLoop.start("stalling-task-loop")) {
            CountDownLatch release = new CountDownLatch(1);
            java.util.concurrent.TimeoutException e = org.junit.jupiter.api.Assertions.assertThrows(
                    java.util.concurrent.TimeoutException.class, () -> loop.awaitOnLoop(() -> {
                        try {
                            release.await();
                        } catch (InterruptedException x) {
                            Thread.currentThread().interrupt();
                        }
                    }, java.time.Duration.ofMillis(300)));
            assertTrue(e.getMessage().contains("still running"), e.getMessage());
            release.countDown();
        }
    }

    @Test
    void coalescedTriggersShouldQueueTheTaskOncePerRun() throws Exception {
        try (EventLoop loop = EventLoop.start("coalescing-loop")) {
            CountDownLatch release = new CountDownLatch(1);
            loop.execute(() -> {
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            AtomicInteger runs = new AtomicInteger();
            EventLoop.Coalesced wakeUp = loop.coalescing(runs::incrementAndGet);
            for (int i = 0; i < 100_000; i++) {
                wakeUp.trigger(); // a flood of kicks while the loop is busy
            }
            assertTrue(wakeUp.isQueued());
            release.countDown();
            loop.awaitOnLoop(() -> { }, java.time.Duration.ofSeconds(10));
            assertEquals(1, runs.get(), "100000 triggers while queued run the task once");
            assertFalse(wakeUp.isQueued());
            wakeUp.trigger();
            loop.awaitOnLoop(() -> { }, java.time.Duration.ofSeconds(10));
            assertEquals(2, runs.get(), "a trigger after the run queues it again");
        }
    }

    @Test
    void cancelWithATimeoutShouldStopDispatchEvenWhenTheLoopIsStalled() throws Exception {
        try (EventLoop loop = EventLoop.start("stalled-cancel-loop"); EventFd kick = EventFd.create()) {
            AtomicInteger calls = new AtomicInteger();
            EventLoop.Registration r = loop.add(kick.owner(), events -> {
                kick.drain();
                calls.incrementAndGet();
            });
            CountDownLatch release = new CountDownLatch(1);
            CountDownLatch stalled = new CountDownLatch(1);
            loop.execute(() -> {
                stalled.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            assertTrue(stalled.await(10, TimeUnit.SECONDS));
            org.junit.jupiter.api.Assertions.assertThrows(java.util.concurrent.TimeoutException.class,
                    () -> r.cancel(java.time.Duration.ofMillis(300)));
            kick.signal();
            release.countDown();
            loop.awaitOnLoop(() -> { }, java.time.Duration.ofSeconds(10));
            assertEquals(0, calls.get(), "a registration cancelled during a stall is never dispatched");
            r.cancel(java.time.Duration.ofSeconds(1)); // harmless twice
        }
    }
}
