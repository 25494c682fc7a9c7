package dev.outproc.core.event;

import dev.outproc.core.fd.NativeException;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.internal.linux.Linux;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * An epoll loop on one platform thread that dispatches the readiness of registered fds to handlers.
 *
 * <p>{@link #add}, {@link Registration#cancel()}, {@link #execute} and {@link #close()} are safe from any
 * thread. A registration cancelled from another thread has run its handler for the last time when
 * {@code cancel()} returns, so the caller may close the fd at once. Handlers run on the loop thread and
 * must not block.
 *
 * <h2 id="failures">Failures</h2>
 * The loop serves many peers, and a peer-driven handler can fail in ways its author did not foresee; one
 * peer must not take the loop, and with it every other peer, down. The policy:
 * <ul>
 * <li>an {@link Exception} from a handler is logged (WARNING) and the registration stays;</li>
 * <li>any other {@link Throwable} from a handler (an {@link Error}: {@code OutOfMemoryError},
 *     {@code StackOverflowError}, {@code InternalError} from a faulting memory access, an assertion) is
 *     logged (ERROR), the registration is cancelled and {@link Handler#failed} runs, so its owner can tear
 *     down that connection alone;</li>
 * <li>a task given to {@link #execute} that throws anything is logged (ERROR for an {@code Error}) and the
 *     next task runs; {@link #awaitOnLoop} hands the failure to its caller;</li>
 * <li>a poller that throws an {@code Error} is removed and logged; one that throws an exception stays.</li>
 * </ul>
 * In every case the loop thread keeps running.
 *
 * <p>In {@linkplain Mode#BUSY_POLL busy-poll} mode the loop never sleeps: it polls epoll with a zero
 * timeout and runs every {@linkplain #addPoller poller} on each turn, trading a core for latency.
 */
public final class EventLoop implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(EventLoop.class.getName());
    private static final int MAX_EVENTS = 64;
    /**
     * A busy-poll loop calls {@code epoll_wait} on one turn in this many (a power of two); the other
     * turns run tasks and pollers only. Fds (kicks, the wake-up) wait at most that many turns.
     */
    static final int BUSY_TURNS_PER_EPOLL = 64;
    /**
     * The most tasks one turn runs. A task that queues another (or a flood from other threads) waits for the
     * next turn, so ready fds and pollers are served between them; the loop then looks at its fds without
     * blocking.
     */
    static final int MAX_TASKS_PER_TURN = 256;
    private static final long WAKE_ID = 0;

    /** How the loop waits for work. */
    public enum Mode {
        /** Sleep in {@code epoll_wait} until an fd is ready. */
        BLOCKING,
        /** Never sleep: poll epoll and run the pollers continuously. */
        BUSY_POLL
    }

    /** Called on the loop thread when a registered fd is ready. */
    @FunctionalInterface
    public interface Handler {
        /**
         * Handles readiness.
         *
         * @param events the epoll event bits that are set ({@code EPOLLIN} = 1, {@code EPOLLHUP} = 0x10 …)
         * @throws Exception anything; it is logged and the loop goes on
         */
        void ready(int events) throws Exception;

        /**
         * Called on the loop thread after {@link #ready} threw something other than an {@link Exception}
         * and the registration was cancelled (see <a href="EventLoop.html#failures">Failures</a>): tear down
         * what this fd served. Does nothing unless overridden; what it throws is logged.
         *
         * @param failure what {@code ready} threw
         */
        default void failed(Throwable failure) {
        }
    }

    /** A registered fd; cancel it to stop dispatching. */
    public final class Registration {
        private final long id;
        private final int fd;
        private final Handler handler;
        private volatile boolean cancelled;

        private Registration(long id, int fd, Handler handler) {
            this.id = id;
            this.fd = fd;
            this.handler = handler;
        }

        /** {@return the registered fd} */
        public int fd() {
            return fd;
        }

        /**
         * Stops dispatching this fd. When called off the loop thread, waits until the loop has
         * acknowledged, so the handler is not running and will not run again.
         */
        public void cancel() {
            if (cancelled) {
                return;
            }
            if (onLoopThread() || !running) {
                remove(this);
            } else {
                awaitOnLoop(() -> remove(this));
            }
        }

        /**
         * Stops dispatching this fd, waiting at most {@code timeout} for the loop to acknowledge. When the
         * loop is stalled (a handler blocked on something a peer controls) the fd is still removed from
         * epoll and will not be dispatched again, but a handler running now may still be running: treat
         * its connection as dead, and leave the fd open until the handler is known to have returned.
         *
         * @param timeout the longest wait for the loop
         * @throws TimeoutException when the loop did not acknowledge in time
         */
        public void cancel(Duration timeout) throws TimeoutException {
            if (cancelled) {
                return;
            }
            if (onLoopThread() || !running) {
                remove(this);
                return;
            }
            try {
                awaitOnLoop(() -> remove(this), timeout);
            } catch (TimeoutException e) {
                remove(this); // epoll_ctl is thread-safe; the loop skips a cancelled registration
                throw e;
            }
        }
    }

    private final Mode mode;
    private final Thread thread;
    private final int epfd;
    private final EventFd wake;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment events;
    private final Map<Long, Registration> registrations = new ConcurrentHashMap<>();
    private final Queue<Runnable> tasks = new ConcurrentLinkedQueue<>();
    private final CopyOnWriteArrayList<Runnable> pollers = new CopyOnWriteArrayList<>();
    /** {@link #pollers} as an array, replaced on every change: what the loop iterates. */
    private volatile Runnable[] pollerArray = new Runnable[0];
    private final AtomicLong nextId = new AtomicLong(1);
    private volatile boolean running = true;
    private boolean resourcesClosed;

    private EventLoop(String name, Mode mode) throws NativeException {
        this.mode = mode;
        int fd = Linux.epollCreate1(Linux.EPOLL_CLOEXEC);
        this.epfd = fd;
        try {
            this.wake = EventFd.create();
            Linux.epollCtl(epfd, Linux.EPOLL_CTL_ADD, wake.fd(), Linux.EPOLLIN, WAKE_ID);
        } catch (NativeException e) {
            Linux.close(fd);
            throw e;
        }
        this.events = arena.allocate(Linux.EPOLL_EVENT_SIZE * MAX_EVENTS, 8);
        this.thread = Thread.ofPlatform().name(name).daemon(true).unstarted(this::run);
    }

    /**
     * Starts a loop that sleeps in epoll.
     *
     * @param name the thread's name
     * @return the running loop
     * @throws NativeException when epoll or eventfd cannot be created
     */
    public static EventLoop start(String name) throws NativeException {
        return start(name, Mode.BLOCKING);
    }

    /**
     * Starts a loop.
     *
     * @param name the thread's name
     * @param mode blocking or busy-poll
     * @return the running loop
     * @throws NativeException when epoll or eventfd cannot be created
     */
    public static EventLoop start(String name, Mode mode) throws NativeException {
        EventLoop loop = new EventLoop(name, mode);
        loop.thread.start();
        return loop;
    }

    /** {@return the loop's mode} */
    public Mode mode() {
        return mode;
    }

    /** {@return whether the caller runs on the loop thread} */
    public boolean onLoopThread() {
        return Thread.currentThread() == thread;
    }

    /**
     * Registers an fd for {@code EPOLLIN} readiness.
     *
     * @param fd the fd (still owned by the caller, who closes it after cancelling)
     * @param handler called on the loop thread
     * @return the registration
     * @throws NativeException when epoll_ctl fails
     */
    public Registration add(OwnedFd fd, Handler handler) throws NativeException {
        return add(fd.get(), Linux.EPOLLIN, handler);
    }

    /**
     * Registers an fd.
     *
     * @param fd the raw fd (still owned by the caller)
     * @param eventMask the epoll events to wait for
     * @param handler called on the loop thread
     * @return the registration
     * @throws NativeException when epoll_ctl fails
     */
    public Registration add(int fd, int eventMask, Handler handler) throws NativeException {
        if (!running) {
            throw new IllegalStateException("event loop " + thread.getName() + " is closed");
        }
        Registration r = new Registration(nextId.getAndIncrement(), fd, handler);
        registrations.put(r.id, r);
        try {
            Linux.epollCtl(epfd, Linux.EPOLL_CTL_ADD, fd, eventMask, r.id);
        } catch (NativeException e) {
            registrations.remove(r.id);
            throw e;
        }
        return r;
    }

    /**
     * Adds a task run on every turn of a busy-poll loop (for rings polled without a kick fd).
     * In blocking mode pollers run after each wake-up.
     *
     * @param poller the task
     */
    public synchronized void addPoller(Runnable poller) {
        pollers.add(poller);
        pollerArray = pollers.toArray(new Runnable[0]);
        wakeUp();
    }

    /**
     * Removes a poller; waits until it is not running when called off the loop thread.
     *
     * @param poller the task
     */
    public void removePoller(Runnable poller) {
        if (onLoopThread() || !running) {
            synchronized (this) {
                removePollerOnLoop(poller);
            }
        } else {
            awaitOnLoop(() -> {
                synchronized (this) {
                    removePollerOnLoop(poller);
                }
            });
        }
    }

    /**
     * Runs a task on the loop thread.
     *
     * @param task the task
     */
    public void execute(Runnable task) {
        tasks.add(task);
        wakeUp();
    }

    /**
     * Runs a task on the loop thread and waits for it, however long it takes. Where a peer can stall the
     * loop (a handler blocked on something the peer controls), use {@link #awaitOnLoop(Runnable, Duration)}.
     *
     * @param task the task
     */
    public void awaitOnLoop(Runnable task) {
        try {
            await(task, Long.MAX_VALUE);
        } catch (TimeoutException e) {
            throw new IllegalStateException("unreachable: no deadline", e);
        }
    }

    /**
     * Runs a task on the loop thread and waits at most {@code timeout} for it. A task the loop has not
     * started by then is withdrawn and never runs; one it started keeps running. Either way the caller
     * gets a {@link TimeoutException} and should treat the loop's peer as stalled (tear that connection
     * down) instead of waiting forever.
     *
     * @param task the task
     * @param timeout the longest wait
     * @throws TimeoutException when the task did not finish in time; the message says whether it started
     */
    public void awaitOnLoop(Runnable task, Duration timeout) throws TimeoutException {
        await(task, Math.max(0, timeout.toNanos()));
    }

    private void await(Runnable task, long timeoutNanos) throws TimeoutException {
        if (onLoopThread() || !thread.isAlive()) {
            task.run();
            return;
        }
        // 0: queued, 1: started, 2: withdrawn
        AtomicInteger state = new AtomicInteger();
        CompletableFuture<Void> done = new CompletableFuture<>();
        Runnable wrapper = () -> {
            if (!state.compareAndSet(0, 1)) {
                return; // withdrawn after a timeout
            }
            try {
                task.run();
                done.complete(null);
            } catch (Throwable t) {
                done.completeExceptionally(t);
            }
        };
        execute(wrapper);
        long start = System.nanoTime();
        try {
            while (true) {
                try {
                    done.get(100, TimeUnit.MILLISECONDS);
                    return;
                } catch (TimeoutException e) {
                    if (!thread.isAlive()) {
                        // The loop ended before it took the task: run it here, once.
                        if (state.compareAndSet(0, 1)) {
                            tasks.remove(wrapper);
                            task.run();
                        }
                        return;
                    }
                    if (System.nanoTime() - start >= timeoutNanos) {
                        boolean withdrawn = state.compareAndSet(0, 2);
                        if (withdrawn) {
                            tasks.remove(wrapper);
                        }
                        throw new TimeoutException("event loop " + thread.getName() + " did not "
                                + (withdrawn ? "start a task within " : "finish a task it started within ")
                                + Duration.ofNanos(timeoutNanos).toMillis() + " ms"
                                + (withdrawn ? "; the task was withdrawn" : "; it is still running"));
                    }
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException e) {
            throw new IllegalStateException("event loop task failed", e.getCause());
        }
    }

    /**
     * {@return a trigger that runs {@code task} on the loop thread, coalescing requests} Any number of
     * {@link Coalesced#trigger()} calls before the task starts queue it once: a flood of wake-ups (a peer's
     * kicks, a poller) costs one queued task, not one per request. A trigger during the run queues it again.
     *
     * @param task the task
     */
    public Coalesced coalescing(Runnable task) {
        return new Coalesced(task);
    }

    /** A task queued on the loop at most once at a time; see {@link #coalescing(Runnable)}. */
    public final class Coalesced {
        private final AtomicBoolean queued = new AtomicBoolean();
        private final Runnable runner;

        private Coalesced(Runnable task) {
            Objects.requireNonNull(task, "task");
            this.runner = () -> {
                queued.set(false); // before the run: a trigger from now on runs it again
                task.run();
            };
        }

        /** Queues the task unless it is queued already and has not started. Allocates nothing. */
        public void trigger() {
            if (queued.compareAndSet(false, true)) {
                execute(runner);
            }
        }

        /** {@return whether the task is queued and has not started} */
        public boolean isQueued() {
            return queued.get();
        }
    }

    private void remove(Registration r) {
        r.cancelled = true;
        if (registrations.remove(r.id) != null) {
            try {
                Linux.epollCtl(epfd, Linux.EPOLL_CTL_DEL, r.fd, 0, 0);
            } catch (NativeException e) {
                // EBADF/ENOENT: the fd was closed already, which removed it from the interest list.
                LOG.log(System.Logger.Level.DEBUG, "epoll_ctl(DEL) failed: {0}", e.getMessage());
            }
        }
    }

    private synchronized void wakeUp() {
        if (mode == Mode.BUSY_POLL || resourcesClosed) {
            return;
        }
        try {
            wake.signal();
        } catch (NativeException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot wake event loop", e);
        }
    }

    private void run() {
        int timeout = mode == Mode.BUSY_POLL ? 0 : -1;
        int turn = 0;
        boolean tasksLeft = false;
        try {
            while (running) {
                if (mode == Mode.BUSY_POLL && (turn++ & (BUSY_TURNS_PER_EPOLL - 1)) != 0) {
                    // A system call costs more than many empty polls: look at the fds every few turns only.
                    runTasks();
                    runPollers();
                    continue;
                }
                int n;
                try {
                    n = Linux.epollWait(epfd, events, MAX_EVENTS, tasksLeft ? 0 : timeout);
                } catch (NativeException e) {
                    LOG.log(System.Logger.Level.ERROR, "epoll_wait failed; event loop stops", e);
                    break;
                }
                for (int i = 0; i < n; i++) {
                    long base = i * Linux.EPOLL_EVENT_SIZE;
                    int ready = events.get(ValueLayout.JAVA_INT_UNALIGNED, base);
                    long id = events.get(ValueLayout.JAVA_LONG_UNALIGNED, base + Linux.EPOLL_EVENT_DATA_OFFSET);
                    if (id == WAKE_ID) {
                        wake.drain();
                        continue;
                    }
                    Registration r = registrations.get(id);
                    if (r == null || r.cancelled) {
                        continue; // cancelled earlier in this batch
                    }
                    dispatch(r, ready);
                }
                tasksLeft = runTasks();
                runPollers();
            }
        } catch (NativeException e) {
            LOG.log(System.Logger.Level.ERROR, "event loop failed", e);
        } finally {
            running = false;
            drainTasks();
            closeResources();
        }
    }

    private void dispatch(Registration r, int ready) {
        try {
            r.handler.ready(ready);
        } catch (Exception e) {
            LOG.log(System.Logger.Level.WARNING, "handler for fd " + r.fd + " failed", e);
        } catch (Throwable t) {
            LOG.log(System.Logger.Level.ERROR, "handler for fd " + r.fd + " failed with " + t
                    + "; its registration is cancelled, the loop goes on", t);
            remove(r);
            try {
                r.handler.failed(t);
            } catch (Throwable again) {
                LOG.log(System.Logger.Level.ERROR, "failure callback for fd " + r.fd + " failed", again);
            }
        }
    }

    /** Runs up to {@link #MAX_TASKS_PER_TURN} queued tasks; {@return whether tasks are still queued}. */
    private boolean runTasks() {
        for (int i = 0; i < MAX_TASKS_PER_TURN; i++) {
            Runnable task = tasks.poll();
            if (task == null) {
                return false;
            }
            runSafely(task, "event loop task");
        }
        return !tasks.isEmpty();
    }

    /**
     * On the way out: runs the tasks queued so far (their waiters are released), not the ones they queue in
     * turn, which would keep a stopping loop alive.
     */
    private void drainTasks() {
        for (int left = tasks.size(); left > 0; left--) {
            Runnable task = tasks.poll();
            if (task == null) {
                return;
            }
            runSafely(task, "event loop task");
        }
    }

    private void runPollers() {
        // The list's array, not an iterator: a busy-poll turn allocates nothing.
        Runnable[] current = pollerArray;
        for (Runnable poller : current) {
            if (!runSafely(poller, "poller")) {
                removePollerOnLoop(poller);
            }
        }
    }

    private void removePollerOnLoop(Runnable poller) {
        pollers.remove(poller);
        pollerArray = pollers.toArray(new Runnable[0]);
    }

    /** Runs a task; {@return false when it threw an {@code Error} (an exception is logged and forgiven)} */
    private static boolean runSafely(Runnable task, String what) {
        try {
            task.run();
            return true;
        } catch (Exception e) {
            LOG.log(System.Logger.Level.WARNING, what + " failed", e);
            return true;
        } catch (Throwable t) {
            LOG.log(System.Logger.Level.ERROR, what + " failed with " + t + "; the loop goes on", t);
            return false;
        }
    }

    /** {@return whether the loop still runs} */
    public boolean isRunning() {
        return running;
    }

    /** Stops the loop, waits for its thread and closes epoll. Registered fds stay with their owners. */
    @Override
    public void close() {
        running = false;
        if (onLoopThread()) {
            return; // the loop ends after this turn and closes its resources
        }
        synchronized (this) {
            if (!resourcesClosed) {
                try {
                    wake.signal();
                } catch (NativeException e) {
                    LOG.log(System.Logger.Level.WARNING, "cannot wake event loop", e);
                }
            }
        }
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private synchronized void closeResources() {
        if (resourcesClosed) {
            return;
        }
        resourcesClosed = true;
        registrations.clear();
        wake.close();
        try {
            Linux.close(epfd);
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "close(epoll) failed", e);
        }
        arena.close();
    }
}
