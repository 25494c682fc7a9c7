package dev.outproc.vhost.frontend;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.virtqueue.DriverQueue;

import java.io.IOException;

/**
 * A ring a {@link VhostUserFrontend} started: the driver-side queue with its kick and call eventfds.
 * Post chains on {@link #queue()}, then {@link #publishAndKick()}, wait with {@link #awaitCall(long)}, reap
 * with {@link DriverQueue#pollUsed()}.
 */
public final class FrontendQueue implements AutoCloseable {
    private final VhostUserFrontend frontend;
    private final int index;
    private final DriverQueue queue;
    private final EventFd kick;
    private final EventFd call;
    private long kicks;

    FrontendQueue(VhostUserFrontend frontend, int index, DriverQueue queue, EventFd kick, EventFd call) {
        this.frontend = frontend;
        this.index = index;
        this.queue = queue;
        this.kick = kick;
        this.call = call;
    }

    /** {@return the ring index} */
    public int index() {
        return index;
    }

    /** {@return the driver-side queue} */
    public DriverQueue queue() {
        return queue;
    }

    /** {@return the kick eventfd} */
    public EventFd kick() {
        return kick;
    }

    /** {@return the call eventfd (non-blocking)} */
    public EventFd call() {
        return call;
    }

    /** {@return how many kicks were sent} */
    public long kicks() {
        return kicks;
    }

    /**
     * Publishes posted chains and kicks the back-end when the suppression rules ask for it.
     *
     * @throws IOException when the kick fails
     */
    public void publishAndKick() throws IOException {
        queue.publish();
        if (queue.kickNeeded()) {
            kick.signal();
            kicks++;
        }
    }

    /**
     * Waits until the back-end signals the call eventfd.
     *
     * @param timeoutMillis how long to wait at most
     * @return the number of signals coalesced
     * @throws IOException when the read fails, or no call came in time
     */
    public long awaitCall(long timeoutMillis) throws IOException {
        long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
        int spins = 0;
        while (true) {
            long n = call.drain();
            if (n != 0) {
                return n;
            }
            if (System.nanoTime() - deadline > 0) {
                throw new IOException("no call on ring " + index + " within " + timeoutMillis + " ms");
            }
            if (++spins > 100) {
                java.util.concurrent.locks.LockSupport.parkNanos(20_000);
            } else {
                Thread.onSpinWait();
            }
        }
    }

    /** {@return the front-end} */
    public VhostUserFrontend frontend() {
        return frontend;
    }

    /** Closes the eventfds. */
    @Override
    public void close() {
        kick.close();
        call.close();
    }
}
