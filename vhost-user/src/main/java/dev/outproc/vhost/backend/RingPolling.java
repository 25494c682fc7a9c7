package dev.outproc.vhost.backend;

import java.util.concurrent.locks.LockSupport;

/**
 * Runs a started ring without kicks: on every turn of a busy-polling worker (options {@code busyPoll}),
 * or, for a ring that has no kick eventfd (SET_VRING_KICK with the invalid-fd flag: vhost-user.rst says the
 * back-end then polls), from a thread that wakes the ring's worker every 50 microseconds.
 */
final class RingPolling {
    /** How often a ring without a kick eventfd is polled. */
    private static final long POLL_INTERVAL_NANOS = 50_000;

    private RingPolling() {
    }

    /**
     * Starts polling a ring; on the connection thread, when the ring starts.
     *
     * @param ring the ring
     * @param backend its back-end (its options say how to poll; polling ends when it closes)
     * @param run runs the device on the ring, on the ring's worker
     */
    static void start(RingState ring, VhostUserBackend backend, Runnable run) {
        if (backend.options().busyPoll()) {
            ring.busyPoller = run;
            ring.polled = true;
            ring.worker().addPoller(ring.busyPoller);
            return;
        }
        // A worker that is busy (or stalled) gets one queued run, not one per tick.
        ring.pollThread = Thread.ofPlatform().daemon(true).name("vhost-user-poll-" + ring.index()).start(() -> {
            while (!Thread.currentThread().isInterrupted() && ring.started && !backend.isClosed()) {
                ring.wake.trigger();
                LockSupport.parkNanos(POLL_INTERVAL_NANOS);
            }
        });
    }

    /**
     * Stops polling a ring, if it was polled; when the ring stops.
     *
     * @param ring the ring
     */
    static void stop(RingState ring) {
        if (ring.busyPoller != null) {
            ring.polled = false;
            ring.worker().removePoller(ring.busyPoller);
            ring.busyPoller = null;
        }
        if (ring.pollThread != null) {
            ring.pollThread.interrupt();
            ring.pollThread = null;
        }
    }
}
