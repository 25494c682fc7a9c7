package dev.outproc.vhost.backend;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestMemoryException;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.vhost.message.IotlbMsg;

import java.io.IOException;

import static java.lang.System.Logger.Level.TRACE;
import static java.lang.System.Logger.Level.WARNING;

/**
 * The IOTLB handler (VIRTIO_F_ACCESS_PLATFORM): IOTLB_MSG updates and invalidations from the front-end
 * build the I/O virtual address space the rings then live in, and a ring that touches an unmapped IOVA
 * asks for it (an IOTLB miss on the back-end channel) and resumes when the update arrives.
 */
final class IovaSpace {
    private static final System.Logger LOG = System.getLogger(VhostUserBackend.class.getName());

    private final Session session;
    private final Iotlb iotlb = new Iotlb();
    /** Read by workers when a ring starts (through the ring's memory snapshot, published on the worker). */
    private volatile GuestMemory space = GuestMemory.empty();

    IovaSpace(Session session) {
        this.session = session;
    }

    /** {@return whether the rings use I/O virtual addresses (ACCESS_PLATFORM negotiated)} */
    boolean iommu() {
        return (session.negotiatedFeatures() & VirtioFeature.ACCESS_PLATFORM.mask()) != 0;
    }

    /** {@return the address space the rings live in: the IOTLB's when ACCESS_PLATFORM is on, else guest-physical} */
    GuestMemory ringSpace() {
        return iommu() ? space : session.memoryTable().current();
    }

    /** Rebuilds the IOVA space over a new memory table and returns it. */
    GuestMemory rebuild(GuestMemory table) throws GuestMemoryException {
        GuestMemory next = iotlb.build(table);
        space = next;
        return next;
    }

    /** IOTLB_MSG from the front-end: an update or an invalidation. */
    void message(IotlbMsg.Decoder payload) throws IOException {
        if (!iommu()) {
            throw new BackendException(BackendException.UNSUPPORTED,
                    "IOTLB_MSG needs VIRTIO_F_ACCESS_PLATFORM, which was not negotiated");
        }
        int type = payload.type();
        switch (type) {
            case IotlbMsg.TYPE_UPDATE -> iotlb.update(payload.iova(), payload.size(), payload.userAddr(), payload.perm());
            case IotlbMsg.TYPE_INVALIDATE -> iotlb.invalidate(payload.iova(), payload.size());
            default -> throw new BackendException(BackendException.INVALID, "IOTLB_MSG from a front-end is an update ("
                    + IotlbMsg.TYPE_UPDATE + ") or an invalidation (" + IotlbMsg.TYPE_INVALIDATE + "), type=" + type);
        }
        LOG.log(TRACE, "IOTLB {0}: {1} entries", type == IotlbMsg.TYPE_UPDATE ? "update" : "invalidation", iotlb.size());
        session.memoryTable().switchRingMemory(rebuild(session.memoryTable().current()));
        session.rings().retryAfterIotlbChange();
    }

    /**
     * A ring touched an IOVA the IOTLB does not map: ask the front-end (IOTLB_MSG miss on the back-end
     * channel, sent by the channel's sender thread so that the worker never blocks) and wait for its update.
     */
    void missed(RingState ring, long iova) {
        ring.iotlbMiss = true;
        if (!session.backendChannel().requestIotlbMiss(ring.index(), iova)) {
            LOG.log(WARNING, "ring {0} missed IOVA 0x{1} and there is no back-end channel (SET_BACKEND_REQ_FD) to "
                    + "ask for it: waiting for an IOTLB update", ring.index(), Long.toHexString(iova));
        }
    }

    /** Forgets every mapping (a reset or the end of the connection). */
    void clear() {
        iotlb.clear();
        space = GuestMemory.empty();
    }
}
