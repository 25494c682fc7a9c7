package dev.outproc.vhost.backend;

import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.DirtyLog;
import dev.outproc.core.memory.Unsigned;
import dev.outproc.core.transport.ReceivedFds;
import dev.outproc.core.virtqueue.DeviceQueue;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.LogDescription;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.vhost.message.VhostUserFeature;

import java.io.IOException;

import static java.lang.System.Logger.Level.DEBUG;

/**
 * The dirty-log handler (LOG_SHMFD): SET_LOG_BASE maps the front-end's bitmap, SET_LOG_FD keeps its
 * eventfd, and every ring logs its writes while F_LOG_ALL is acknowledged. The rings pick up a change on
 * their workers, so once SET_LOG_BASE or SET_FEATURES is handled no write goes to the old state.
 */
final class DirtyLogging implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VhostUserBackend.class.getName());
    private static final long LOG_ALL = VhostUserFeature.LOG_ALL.mask();

    private final Session session;
    private DirtyLog log;
    private OwnedFd logEventFd;

    DirtyLogging(Session session) {
        this.session = session;
    }

    /** SET_LOG_BASE; replies itself (u64 0) once the log is in use. */
    void setLogBase(LogDescription.Decoder payload, ReceivedFds fds) throws IOException {
        session.require(ProtocolFeature.LOG_SHMFD, FrontendRequest.SET_LOG_BASE);
        if (session.iova().iommu()) {
            // Buffers are addressed by IOVA; the log is by guest-physical page. Translating back is not
            // implemented, so refuse rather than mark the wrong pages.
            fds.take(0).close();
            throw new BackendException(BackendException.UNSUPPORTED,
                    "dirty logging with VIRTIO_F_ACCESS_PLATFORM is not supported");
        }
        long size = payload.mmapSize();
        long offset = payload.mmapOffset();
        DirtyLog next;
        try (OwnedFd fd = fds.take(0)) {
            if (size <= 0 || size % 8 != 0 || offset < 0 || offset % 8 != 0) {
                throw new BackendException(BackendException.INVALID, "SET_LOG_BASE: size and offset must be positive "
                        + "multiples of 8, size=" + Unsigned.hex(size) + ", offset=" + Unsigned.hex(offset));
            }
            MemoryTable.admit(session, fd, offset, size, "SET_LOG_BASE");
            next = DirtyLog.map(fd, offset, size, DirtyLog.DEFAULT_PAGE_SIZE);
        }
        DirtyLog old = log;
        log = next;
        for (Vring v : session.vrings()) {
            session.onWorker(v.worker(), () -> apply(v.state()));
        }
        if (old != null) {
            old.close();
        }
        LOG.log(DEBUG, "dirty log: {0} bytes", size);
        session.replyU64(FrontendRequest.SET_LOG_BASE, 0);
    }

    /** SET_LOG_FD: kept (and closed with the connection); this back-end never needs to signal it. */
    void setLogFd(OwnedFd fd) {
        if (logEventFd != null) {
            logEventFd.close();
        }
        logEventFd = fd;
    }

    /** Gives a ring's queue the current log state; on the ring's worker, or before the ring starts. */
    void apply(RingState ring) {
        if (ring == null || ring.queue == null) {
            return;
        }
        boolean logging = (session.negotiatedFeatures() & LOG_ALL) != 0 && log != null;
        ring.queue.setDirtyLog(logging ? log : null, ring.logUsed ? ring.logGuestAddr : DeviceQueue.NO_RING_LOG);
    }

    @Override
    public void close() {
        if (log != null) {
            log.close();
        }
        if (logEventFd != null) {
            logEventFd.close();
        }
    }
}
