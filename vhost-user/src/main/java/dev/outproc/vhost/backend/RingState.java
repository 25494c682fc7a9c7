package dev.outproc.vhost.backend;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.event.EventLoop;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.virtqueue.DeviceQueue;

/**
 * What one front-end connection set up for one ring: size, addresses, base, notifiers, the device-side
 * queue and the life-cycle flags. Created with the {@link Session} and dropped with it, so a new
 * front-end never inherits a ring position, a notifier or a flag from the last one; a reset replaces it
 * with a fresh one instead of clearing fields.
 *
 * <p>Threads: the connection thread writes the set-up fields while the ring is stopped, or while its
 * worker is quiesced ({@link EventLoop#awaitOnLoop}); the worker reads them. The volatile flags are read
 * from any thread.
 */
final class RingState {
    final Vring vring;
    final Session session;

    DeviceQueue queue;
    GuestMemory memory = GuestMemory.empty();
    int size;
    long descAddr;
    long availAddr;
    long usedAddr;
    long logGuestAddr;
    boolean logUsed;
    boolean addressesSet;
    int baseAvail;
    int baseUsed;
    boolean baseAvailWrap = true;
    boolean baseUsedWrap = true;
    EventFd kick;
    EventFd call;
    EventFd err;
    boolean inbandCall;
    EventLoop.Registration kickRegistration;
    Runnable busyPoller;
    /** Whether a busy-polling worker runs the ring on every turn (kicks may then stay suppressed). */
    volatile boolean polled;
    Thread pollThread;
    volatile boolean started;
    volatile boolean enabled;
    volatile boolean broken;
    /** The ring touched an unmapped IOVA and waits for an IOTLB update (worker thread). */
    volatile boolean iotlbMiss;
    /** SET_VRING_KICK came before the IOTLB mapped the ring areas (connection thread). */
    boolean waitingStart;
    /** A kick that came while the ring was disabled, served on enable. */
    boolean pendingKick;

    /**
     * Runs the device on this ring on its worker, queued at most once at a time: a flood of in-band kicks or
     * poller ticks costs one queued task, not one each.
     */
    final EventLoop.Coalesced wake;

    RingState(Vring vring, Session session) {
        this.vring = vring;
        this.session = session;
        this.wake = vring.worker().coalescing(() -> session.rings().run(this));
    }

    /** {@return the ring's index} */
    int index() {
        return vring.index();
    }

    /** {@return the ring's worker} */
    EventLoop worker() {
        return vring.worker();
    }

    /** Marks the ring broken: the queue refuses further work, and the front-end hears of it (SET_VRING_ERR). */
    void markBroken(Exception cause) {
        if (!broken) {
            broken = true;
            if (queue != null) {
                queue.markBroken();
            }
            session.rings().ringBroken(this, cause);
        }
    }

    /** Closes the call and error notifiers. */
    void closeNotifiers() {
        if (call != null) {
            call.close();
            call = null;
        }
        if (err != null) {
            err.close();
            err = null;
        }
        inbandCall = false;
    }

    @Override
    public String toString() {
        return "ring " + index() + (started ? ", started" : "") + (enabled ? ", enabled" : "")
                + (broken ? ", broken" : "");
    }
}
