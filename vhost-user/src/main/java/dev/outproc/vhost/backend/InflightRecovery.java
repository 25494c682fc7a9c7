package dev.outproc.vhost.backend;

import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.transport.ReceivedFds;
import dev.outproc.core.virtqueue.DescriptorChain;
import dev.outproc.core.virtqueue.DeviceQueue;
import dev.outproc.core.virtqueue.PackedQueue;
import dev.outproc.core.virtqueue.QueueConfig;
import dev.outproc.core.virtqueue.QueueState;
import dev.outproc.core.virtqueue.SplitQueue;
import dev.outproc.core.virtqueue.VirtqueueException;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.InflightDescription;
import dev.outproc.vhost.message.ProtocolFeature;

import java.io.IOException;
import java.util.List;

import static java.lang.System.Logger.Level.DEBUG;
import static java.lang.System.Logger.Level.INFO;

/**
 * The inflight handler (INFLIGHT_SHMFD): GET_INFLIGHT_FD creates the shared inflight log, SET_INFLIGHT_FD
 * brings back the log of an earlier back-end, and a ring that starts with a valid log resumes from it:
 * the last batch settled against the ring's used index and the requests still in flight resubmitted
 * (split), or replayed from the used position (packed). The log tracks descriptor chains, not device
 * state, so every device gets it.
 */
final class InflightRecovery implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VhostUserBackend.class.getName());

    private final Session session;
    private final InflightDescription.Encoder reply = new InflightDescription.Encoder();
    private InflightRegion region;

    InflightRecovery(Session session) {
        this.session = session;
    }

    /** GET_INFLIGHT_FD; replies itself with the new log's fd. */
    void getInflightFd(InflightDescription.Decoder payload) throws IOException {
        FrontendRequest r = FrontendRequest.GET_INFLIGHT_FD;
        session.require(ProtocolFeature.INFLIGHT_SHMFD, r);
        int numQueues = payload.numQueues();
        int queueSize = payload.queueSize();
        checkShape(r, numQueues, queueSize);
        InflightRegion next = InflightRegion.create(numQueues, queueSize, session.packed());
        replace(next);
        reply.wrap(session.replyBody(InflightDescription.ENCODED_LENGTH), 0).clear()
                .mmapSize(next.sizeBytes()).mmapOffset(0).numQueues(numQueues).queueSize(queueSize);
        LOG.log(DEBUG, "inflight log created: {0} queue(s) of {1}, {2} bytes", numQueues, queueSize, next.sizeBytes());
        session.sendReply(r, InflightDescription.ENCODED_LENGTH, List.of(next.fd()));
    }

    /** SET_INFLIGHT_FD: maps the log a front-end kept. */
    void setInflightFd(InflightDescription.Decoder payload, ReceivedFds fds) throws IOException {
        FrontendRequest r = FrontendRequest.SET_INFLIGHT_FD;
        session.require(ProtocolFeature.INFLIGHT_SHMFD, r);
        int numQueues = payload.numQueues();
        int queueSize = payload.queueSize();
        checkShape(r, numQueues, queueSize);
        boolean packed = session.packed();
        InflightRegion next;
        try (OwnedFd fd = fds.take(0)) {
            MemoryTable.requireFdCovers(fd, payload.mmapOffset(),
                    InflightRegion.queueRegionBytes(queueSize, packed) * numQueues, r.specName());
            try {
                next = InflightRegion.map(fd, payload.mmapSize(), payload.mmapOffset(), numQueues, queueSize, packed);
            } catch (IllegalArgumentException e) {
                throw new BackendException(BackendException.INVALID, e.getMessage());
            }
        }
        replace(next);
        LOG.log(DEBUG, "inflight log set: {0} queue(s) of {1}", numQueues, queueSize);
    }

    private void checkShape(FrontendRequest r, int numQueues, int queueSize) throws BackendException {
        int rings = session.vrings().length;
        int maxSize = session.device().maxQueueSize();
        if (numQueues < 1 || numQueues > rings || queueSize < 1 || queueSize > maxSize) {
            throw new BackendException(BackendException.INVALID, r.specName() + ": num_queues=" + numQueues
                    + " (1.." + rings + "), queue_size=" + queueSize + " (1.." + maxSize + ")");
        }
    }

    private void replace(InflightRegion next) {
        if (region != null) {
            region.close();
        }
        region = next;
    }

    /**
     * Sets a new queue at the ring's start position, recovered from the log when it holds a valid record
     * of this ring, and lets the log track the queue from then on.
     */
    void importStart(RingState ring, DeviceQueue queue, QueueConfig config, GuestMemory space) throws IOException {
        boolean packed = session.packed();
        int index = ring.index();
        queue.importState(config, start(ring, config, ring.baseAvail, ring.baseUsed, ring.baseAvailWrap), space);
        boolean tracking = region != null && index < region.queueCount() && region.queueSize() >= ring.size
                && region.isPacked() == packed;
        long counter = 0;
        if (tracking && region.isValid(index) && region.queueSize() == ring.size) {
            if (packed) {
                int[] pending = region.inFlightPacked(index);
                if (pending.length > 0) {
                    // A new packed queue object cannot rebuild chains from ids alone (PackedQueue.resubmit
                    // re-delivers only chains the same object holds). With in-order completion the in-flight
                    // chains still sit, untouched, from the used position on: replay them from the ring, after
                    // checking that they are exactly the logged ones (not overwritten by used descriptors).
                    checkPackedReplay(ring, config, space, pending);
                    LOG.log(INFO, "ring {0}: replaying {1} in-flight request(s) from the used position",
                            index, pending.length);
                    queue.importState(config, start(ring, config, ring.baseUsed, ring.baseUsed, ring.baseUsedWrap), space);
                }
            } else {
                // The used index as the guest sees it, read by core's queue from the ring (little-endian).
                int ringUsed = ((SplitQueue) queue).ringUsedIndex();
                InflightRegion.Recovery recovery = region.recoverSplit(index, ringUsed);
                queue.importState(config, start(ring, config, recovery.nextAvail(), recovery.nextUsed(), true), space);
                counter = recovery.lastCounter();
                if (recovery.resubmit().length > 0) {
                    LOG.log(INFO, "ring {0}: resubmitting {1} request(s) from the inflight log",
                            index, recovery.resubmit().length);
                    queue.resubmit(recovery.resubmit());
                }
            }
        }
        if (tracking) {
            region.prepare(index, session.negotiatedFeatures());
            queue.setObserver(region.tracker(index, counter));
        }
    }

    private QueueState start(RingState ring, QueueConfig config, int nextAvail, int nextUsed, boolean availWrap) {
        boolean packed = session.packed();
        return new QueueState(ring.size, ring.descAddr, ring.availAddr, ring.usedAddr, nextAvail, nextUsed,
                packed && availWrap, packed && ring.baseUsedWrap, config.eventIdx());
    }

    /**
     * Checks that the packed ring holds, from the used position on, available chains whose buffer ids are
     * exactly {@code pending}, by popping them with a probe queue of core's (which reads the ring, writes
     * nothing, and is then dropped). With in-order completion a used descriptor is written at the used
     * position first, so a request completed after the log was written shows as a head that is no longer
     * available.
     */
    private static void checkPackedReplay(RingState ring, QueueConfig config, GuestMemory space, int[] pending)
            throws BackendException {
        int size = ring.size;
        boolean[] expected = new boolean[size];
        for (int id : pending) {
            expected[id] = true;
        }
        PackedQueue probe = new PackedQueue(config.name() + " replay check");
        try {
            probe.importState(config, new QueueState(size, ring.descAddr, ring.availAddr, ring.usedAddr, ring.baseUsed,
                    ring.baseUsed, ring.baseUsedWrap, ring.baseUsedWrap, false), space);
            for (int n = 0; n < pending.length; n++) {
                DescriptorChain chain = probe.pop();
                if (chain == null) {
                    throw new BackendException(BackendException.INVALID, "ring " + ring.index() + ": cannot replay "
                            + pending.length + " in-flight request(s) of a packed ring: chain " + n + " from the used "
                            + "position " + ring.baseUsed + " is no longer available (requests completed out of order)");
                }
                if (!expected[chain.id()]) {
                    throw new BackendException(BackendException.INVALID, "ring " + ring.index() + ": the chain at the "
                            + "used position has buffer id " + chain.id() + ", which the inflight log does not hold");
                }
                expected[chain.id()] = false;
            }
        } catch (VirtqueueException | IllegalArgumentException e) {
            throw new BackendException(BackendException.INVALID, "ring " + ring.index() + ": cannot replay "
                    + pending.length + " in-flight request(s) of a packed ring: " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        if (region != null) {
            region.close();
        }
    }
}
