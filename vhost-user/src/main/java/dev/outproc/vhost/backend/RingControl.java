package dev.outproc.vhost.backend;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.fd.NativeException;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.transport.ReceivedFds;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtqueue.DeviceQueue;
import dev.outproc.core.virtqueue.PackedQueue;
import dev.outproc.core.virtqueue.QueueConfig;
import dev.outproc.core.virtqueue.QueueState;
import dev.outproc.core.virtqueue.SplitQueue;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.vhost.message.VringAddr;
import dev.outproc.vhost.message.VringDescriptorIndices;
import dev.outproc.vhost.message.VringFdIndex;
import dev.outproc.vhost.message.VringState;

import java.io.IOException;
import java.util.List;

import static java.lang.System.Logger.Level.DEBUG;
import static java.lang.System.Logger.Level.ERROR;
import static java.lang.System.Logger.Level.WARNING;

/**
 * The ring-control handler: the ring set-up requests (SET_VRING_NUM, _ADDR, _BASE, _CALL, _ERR), the
 * life cycle (SET_VRING_KICK starts a ring, GET_VRING_BASE stops it, SET_VRING_ENABLE enables it) and
 * the work loop that hands a started, enabled ring to the device on its worker.
 *
 * <p>vhost-user.rst "Ring states": started/stopped and enabled/disabled are independent; a kick that
 * comes while a ring is disabled is kept and served on enable; a stopped ring sends nothing.
 */
final class RingControl {
    private static final System.Logger LOG = System.getLogger(VhostUserBackend.class.getName());
    /** Bytes of the packed ring's driver and device event suppression areas. */
    private static final int PACKED_EVENT_BYTES = 4;
    /** The negotiated features the virtqueue layer reads. */
    private static final long QUEUE_FEATURES = VirtioFeature.maskOf(VirtioFeature.EVENT_IDX, VirtioFeature.INDIRECT_DESC,
            VirtioFeature.IN_ORDER, VirtioFeature.RING_PACKED);

    private final Session session;
    private final VringState.Encoder baseReply = new VringState.Encoder();

    RingControl(Session session) {
        this.session = session;
    }

    // ---- per-connection ring state ----

    /** Gives every ring a fresh state of this connection. */
    void attachFresh(boolean enabled) {
        for (Vring v : session.vrings()) {
            RingState fresh = new RingState(v, session);
            fresh.enabled = enabled;
            session.onWorker(v.worker(), () -> v.attach(fresh));
        }
    }

    /** A reset: every ring stopped and replaced by a fresh state, enabled only without F_PROTOCOL_FEATURES. */
    void resetAll() {
        boolean enabled = session.ringsEnabledWithoutEnable();
        for (Vring v : session.vrings()) {
            RingState fresh = new RingState(v, session);
            fresh.enabled = enabled;
            replace(v, fresh);
        }
    }

    /** The end of the connection: every ring stopped, its notifiers closed, no state left behind. */
    void detachAll() {
        for (Vring v : session.vrings()) {
            replace(v, null);
        }
    }

    private void replace(Vring v, RingState next) {
        RingState old = v.state();
        if (old != null && (old.started || old.waitingStart)) {
            stop(old);
        }
        session.onWorker(v.worker(), () -> {
            v.attach(next);
            if (old != null) {
                if (old.kick != null) {
                    old.kick.close(); // a ring that never started keeps the kick it was given
                    old.kick = null;
                }
                old.closeNotifiers();
            }
        });
    }

    private RingState ring(long index, FrontendRequest r) throws BackendException {
        Vring[] vrings = session.vrings();
        if (index < 0 || index >= vrings.length) {
            throw new BackendException(BackendException.INVALID, r.specName() + ": ring index out of range, index="
                    + index + ", queues=" + vrings.length);
        }
        return vrings[(int) index].state();
    }

    private static void requireStopped(RingState ring, FrontendRequest r) throws BackendException {
        if (ring.started) {
            throw new BackendException(BackendException.INVALID, r.specName() + " on ring " + ring.index()
                    + " while it is started (stop it with GET_VRING_BASE first)");
        }
    }

    /** SET_FEATURES changed the features: rings pick up the log state (and enable, when asked) on their workers. */
    void featuresChanged(boolean enableAll) {
        DirtyLogging dirtyLog = session.dirtyLog();
        for (Vring v : session.vrings()) {
            // On the worker: once SET_FEATURES is handled, no write the device makes is logged (or left
            // unlogged) under the old F_LOG_ALL, and the worker sees the new log state.
            session.onWorker(v.worker(), () -> {
                RingState ring = v.state();
                if (enableAll) {
                    ring.enabled = true;
                }
                dirtyLog.apply(ring);
            });
        }
    }

    // ---- set-up ----

    /** SET_VRING_NUM. */
    void setNum(VringState.Decoder payload) throws BackendException {
        FrontendRequest r = FrontendRequest.SET_VRING_NUM;
        RingState ring = ring(payload.index(), r);
        requireStopped(ring, r);
        long num = payload.num();
        boolean packed = session.packed();
        int max = session.device().maxQueueSize();
        if (num < 1 || num > max || (!packed && Long.bitCount(num) != 1)) {
            throw new BackendException(BackendException.INVALID, "SET_VRING_NUM: ring " + ring.index() + " size must be "
                    + (packed ? "1.." : "a power of two up to ") + max + ", num=" + num);
        }
        ring.size = (int) num;
    }

    /** SET_VRING_ADDR: user addresses translated to guest-physical (IOVAs and GPA_ADDRESSES kept as they are). */
    void setAddr(VringAddr.Decoder payload) throws IOException {
        FrontendRequest r = FrontendRequest.SET_VRING_ADDR;
        RingState ring = ring(payload.index(), r);
        requireStopped(ring, r);
        if (ring.size == 0) {
            throw new BackendException(BackendException.INVALID, "SET_VRING_ADDR before SET_VRING_NUM on ring " + ring.index());
        }
        GuestMemory memory = session.memoryTable().current();
        if (memory.regionCount() == 0) {
            throw new BackendException(BackendException.INVALID, "SET_VRING_ADDR on ring " + ring.index()
                    + " before any memory table");
        }
        long desc = payload.descUserAddr();
        long avail = payload.availUserAddr();
        long used = payload.usedUserAddr();
        long[] bytes = areaBytes(ring.size, session.packed());
        if (session.iova().iommu()) {
            // I/O virtual addresses: translated through the IOTLB when the ring starts (misses are asked for).
            ring.descAddr = desc;
            ring.availAddr = avail;
            ring.usedAddr = used;
        } else if (session.negotiated(ProtocolFeature.GPA_ADDRESSES)) {
            // Addresses are guest-physical already: check they lie in memory.
            memory.slice(desc, bytes[0]);
            memory.slice(avail, bytes[1]);
            memory.slice(used, bytes[2]);
            ring.descAddr = desc;
            ring.availAddr = avail;
            ring.usedAddr = used;
        } else {
            ring.descAddr = memory.userToGpa(desc, bytes[0]);
            ring.availAddr = memory.userToGpa(avail, bytes[1]);
            ring.usedAddr = memory.userToGpa(used, bytes[2]);
        }
        ring.logUsed = (payload.flags() & VringAddr.F_LOG) != 0;
        ring.logGuestAddr = payload.logGuestAddr();
        ring.addressesSet = true;
    }

    /** {@return the sizes of the descriptor table, driver area and device area of a ring} */
    private static long[] areaBytes(long size, boolean packed) {
        return new long[] {
            16 * size,
            packed ? PACKED_EVENT_BYTES : 6 + 2 * size,
            packed ? PACKED_EVENT_BYTES : 6 + 8 * size
        };
    }

    /** SET_VRING_BASE. */
    void setBase(VringState.Decoder payload) throws BackendException {
        FrontendRequest r = FrontendRequest.SET_VRING_BASE;
        RingState ring = ring(payload.index(), r);
        requireStopped(ring, r);
        long num = payload.num();
        if (session.packed()) {
            ring.baseAvail = VringDescriptorIndices.packedAvailIndex(num);
            ring.baseAvailWrap = VringDescriptorIndices.packedAvailWrap(num);
            if ((num >>> 16) == 0) {
                // Only the avail half given: the used position is the same.
                ring.baseUsed = ring.baseAvail;
                ring.baseUsedWrap = ring.baseAvailWrap;
            } else {
                ring.baseUsed = VringDescriptorIndices.packedUsedIndex(num);
                ring.baseUsedWrap = VringDescriptorIndices.packedUsedWrap(num);
            }
        } else {
            if (!VringDescriptorIndices.isValidSplit(num)) {
                throw new BackendException(BackendException.INVALID, "SET_VRING_BASE: split ring index is 16 bits, num=" + num);
            }
            ring.baseAvail = VringDescriptorIndices.splitAvail(num);
            ring.baseUsed = ring.baseAvail;
        }
    }

    /** GET_VRING_BASE: stops the ring and replies with its position. */
    void getBase(VringState.Decoder payload) throws IOException {
        FrontendRequest r = FrontendRequest.GET_VRING_BASE;
        RingState ring = ring(payload.index(), r);
        long base = stop(ring);
        baseReply.wrap(session.replyBody(VringState.ENCODED_LENGTH), 0).index(ring.index()).num(base);
        session.sendReply(r, VringState.ENCODED_LENGTH, List.of());
    }

    /** SET_VRING_CALL or SET_VRING_ERR (an eventfd, or none: in-band calls when negotiated). */
    void setCall(long value, ReceivedFds fds, boolean errorFd) throws IOException {
        FrontendRequest r = errorFd ? FrontendRequest.SET_VRING_ERR : FrontendRequest.SET_VRING_CALL;
        RingState ring = ring(VringFdIndex.index(value), r);
        EventFd next = VringFdIndex.noFd(value) ? null : EventFd.adopt(fds.take(0));
        boolean inband = next == null && session.negotiated(ProtocolFeature.INBAND_NOTIFICATIONS);
        session.onWorker(ring.worker(), () -> {
            EventFd old = errorFd ? ring.err : ring.call;
            if (errorFd) {
                ring.err = next;
            } else {
                ring.call = next;
                ring.inbandCall = inband;
            }
            if (old != null) {
                old.close();
            }
        });
    }

    /** SET_VRING_ENABLE. */
    void setEnable(VringState.Decoder payload) throws BackendException {
        session.requireVringEnableAllowed();
        RingState ring = ring(payload.index(), FrontendRequest.SET_VRING_ENABLE);
        long num = payload.num();
        if (num > 1) {
            throw new BackendException(BackendException.INVALID, "SET_VRING_ENABLE takes 0 or 1, num=" + num);
        }
        boolean enable = num == 1;
        session.onWorker(ring.worker(), () -> {
            boolean changed = ring.enabled != enable;
            ring.enabled = enable;
            if (changed) {
                session.device().queueEnabled(ring.vring, enable);
            }
            if (enable) {
                run(ring); // a kick that came while disabled is not lost
            }
        });
        LOG.log(DEBUG, "ring {0} {1}", ring.index(), enable ? "enabled" : "disabled");
    }

    /** VRING_KICK (in-band). */
    void kickInband(VringState.Decoder payload) throws BackendException {
        RingState ring = ring(payload.index(), FrontendRequest.VRING_KICK);
        ring.wake.trigger();
    }

    // ---- life cycle ----

    /** SET_VRING_KICK: (re)starts the ring with the kick eventfd, or polls it when there is none. */
    void setKick(long value, ReceivedFds fds) throws IOException {
        RingState ring = ring(VringFdIndex.index(value), FrontendRequest.SET_VRING_KICK);
        if (ring.started || ring.waitingStart) {
            stop(ring);
        }
        if (ring.kick != null) {
            // Neither started nor waiting, yet holding a kick: nothing will close it but us.
            ring.kick.close();
            ring.kick = null;
        }
        EventFd kick = VringFdIndex.noFd(value) ? null : EventFd.adopt(fds.take(0));
        startOrRelease(ring, kick);
    }

    /**
     * Starts a ring; when that fails, the kick is closed and the ring forgets it (a ring neither started
     * nor waiting must hold no fd: the next SET_VRING_KICK would overwrite it, and repeated, the process
     * would run out of fds).
     */
    private void startOrRelease(RingState ring, EventFd kick) throws IOException {
        try {
            start(ring, kick);
        } catch (Throwable e) {
            ring.waitingStart = false;
            if (kick != null) {
                kick.close();
            }
            ring.kick = null;
            throw e;
        }
    }

    private void start(RingState ring, EventFd kick) throws IOException {
        if (!ring.addressesSet || ring.size == 0) {
            throw new BackendException(BackendException.INVALID, "SET_VRING_KICK on ring " + ring.index()
                    + " before its size and addresses were set");
        }
        IovaSpace iova = session.iova();
        GuestMemory space = iova.ringSpace();
        boolean packed = session.packed();
        if (iova.iommu()) {
            long missing = firstMissingRingArea(ring, space, packed);
            if (missing != -1) {
                // The ring areas are not mapped yet: ask, and start when the IOTLB update arrives.
                ring.kick = kick;
                ring.waitingStart = true;
                iova.missed(ring, missing);
                ring.iotlbMiss = false; // the start retry covers it
                return;
            }
        }
        long features = session.negotiatedFeatures();
        long queueFeatures = features & QUEUE_FEATURES;
        QueueConfig config = new QueueConfig("vring " + ring.index(), ring.size, ring.descAddr, ring.availAddr,
                ring.usedAddr, queueFeatures);
        DeviceQueue queue = packed ? new PackedQueue(config.name()) : new SplitQueue(config.name());
        session.inflight().importStart(ring, queue, config, space);
        queue.setMissesRecoverable(iova.iommu());
        ring.queue = queue;
        ring.memory = space;
        ring.broken = false;
        ring.kick = kick;
        session.dirtyLog().apply(ring);
        VhostUserDevice device = session.device();
        session.onWorker(ring.worker(), () -> {
            ring.started = true;
            device.queueStarted(ring.vring);
        });
        if (kick != null) {
            ring.kickRegistration = ring.worker().add(kick.owner(), events -> {
                kick.drain();
                run(ring);
            });
        }
        if (kick == null || session.backend().options().busyPoll()) {
            // A busy-polling worker runs the ring on every turn whether or not it has a kick fd, so the
            // device may keep the front-end's kicks suppressed (no system call per burst on either side).
            RingPolling.start(ring, session.backend(), () -> run(ring));
        }
        LOG.log(DEBUG, "ring {0} started: {1} ring of {2}, {3}", ring.index(), packed ? "packed" : "split", ring.size,
                kick != null ? "kick eventfd" : "polled");
        // Work queued before the ring started (or a kick that came before enable) is not lost.
        ring.wake.trigger();
    }

    /** {@return the first IOVA of a ring area the space does not hold, or -1 when all are there} */
    private static long firstMissingRingArea(RingState ring, GuestMemory space, boolean packed) {
        long[] bytes = areaBytes(ring.size, packed);
        long[] starts = {ring.descAddr, ring.availAddr, ring.usedAddr};
        for (int i = 0; i < starts.length; i++) {
            if (!space.contains(starts[i], bytes[i])) {
                long at = starts[i];
                while (at < starts[i] + bytes[i] && space.contains(at, 1)) {
                    at++;
                }
                return at;
            }
        }
        return -1;
    }

    /** Stops a ring (quiescing its worker) and returns its vring base word. */
    long stop(RingState ring) {
        // A ring that never started (its ring areas were never mapped): nothing ran, the base is what was set.
        ring.waitingStart = false;
        long[] base = new long[1];
        boolean packed = session.packed();
        VhostUserDevice device = session.device();
        session.onWorker(ring.worker(), () -> {
            if (ring.kickRegistration != null) {
                ring.kickRegistration.cancel();
                ring.kickRegistration = null;
            }
            if (ring.queue != null && ring.started) {
                QueueState state = ring.queue.exportState();
                base[0] = packed ? state.packedVringBase() : VringDescriptorIndices.split(state.nextAvail());
                ring.baseAvail = state.nextAvail();
                ring.baseUsed = state.nextUsed();
                ring.baseAvailWrap = state.availWrapCounter();
                ring.baseUsedWrap = state.usedWrapCounter();
            } else {
                base[0] = packed ? VringDescriptorIndices.packed(ring.baseAvail, ring.baseAvailWrap, ring.baseUsed,
                        ring.baseUsedWrap) : VringDescriptorIndices.split(ring.baseAvail);
            }
            boolean wasStarted = ring.started;
            ring.started = false;
            if (wasStarted) {
                device.queueStopped(ring.vring);
            }
        });
        RingPolling.stop(ring);
        if (ring.kick != null) {
            ring.kick.close();
            ring.kick = null;
        }
        session.backendChannel().dropCall(ring.index());
        LOG.log(DEBUG, "ring {0} stopped at base 0x{1}", ring.index(), Long.toHexString(base[0]));
        return base[0];
    }

    /** Runs the device on a ring; on the ring's worker thread. */
    void run(RingState ring) {
        if (!ring.started || ring.broken || session.backend().isClosed() || ring.vring.state() != ring) {
            return;
        }
        if (!ring.enabled) {
            ring.pendingKick = true;
            return;
        }
        ring.pendingKick = false;
        if (ring.iotlbMiss) {
            return; // waiting for the IOTLB update that resumes this ring
        }
        try {
            session.device().processQueue(ring.vring);
        } catch (IOException | RuntimeException e) {
            if (!ring.iotlbMiss) {
                ring.markBroken(e);
            }
        } catch (Throwable t) {
            // An Error from work a peer can steer (an OutOfMemoryError, an InternalError from a faulting
            // access to shared memory): nothing this connection set up can be trusted any more. End it
            // alone; the worker goes on serving the next one.
            LOG.log(ERROR, "ring " + ring.index() + ": the device failed with " + t + "; closing the connection", t);
            ring.markBroken(new IOException("device failed: " + t, t));
            session.shutdown();
        }
    }

    /** After the IOTLB changed: start rings that waited for their ring areas, resume rings that missed. */
    void retryAfterIotlbChange() throws IOException {
        for (Vring v : session.vrings()) {
            RingState ring = v.state();
            if (ring.waitingStart) {
                EventFd kick = ring.kick;
                ring.waitingStart = false;
                startOrRelease(ring, kick);
            } else if (ring.iotlbMiss) {
                ring.worker().execute(() -> {
                    ring.iotlbMiss = false;
                    run(ring);
                });
            }
        }
    }

    /** A ring broke: logged, and the front-end hears of it on the ring's error eventfd. */
    void ringBroken(RingState ring, Exception cause) {
        LOG.log(WARNING, "ring " + ring.index() + " is broken: " + cause.getMessage());
        EventFd err = ring.err;
        if (err != null) {
            try {
                err.signal();
            } catch (NativeException ignored) {
                // the front-end closed it
            }
        }
    }
}
