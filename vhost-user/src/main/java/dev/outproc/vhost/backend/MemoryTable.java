package dev.outproc.vhost.backend;

import dev.outproc.core.event.EventLoop;
import dev.outproc.core.fd.NativeException;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestMemoryHolder;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.memory.MemFd;
import dev.outproc.core.memory.Unsigned;
import dev.outproc.core.transport.ReceivedFds;
import dev.outproc.core.virtqueue.VirtqueueException;
import dev.outproc.vhost.message.MemTable;
import dev.outproc.vhost.message.MemoryRegion;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import static java.lang.System.Logger.Level.DEBUG;

/**
 * The memory-table handler: SET_MEM_TABLE, ADD_MEM_REG and REM_MEM_REG map and unmap the front-end's
 * shared memory, and every change reaches each ring at a safe point of its worker before the old
 * mappings go. The table is the connection's: closing the handler unmaps it.
 */
final class MemoryTable implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VhostUserBackend.class.getName());

    private final Session session;
    private final GuestMemoryHolder table = new GuestMemoryHolder();

    MemoryTable(Session session) {
        this.session = session;
    }

    /** {@return the current table (guest-physical addresses)} */
    GuestMemory current() {
        return table.current();
    }

    /** SET_MEM_TABLE: replaces the whole table. */
    void setMemTable(MemTable.Decoder payload, ReceivedFds fds) throws IOException {
        long count = payload.nregions();
        if (count < 1 || count > MemTable.MAX_REGIONS) {
            throw new BackendException(BackendException.INVALID, "SET_MEM_TABLE needs 1.." + MemTable.MAX_REGIONS
                    + " regions, nregions=" + count);
        }
        List<GuestRegion> mapped = new ArrayList<>((int) count);
        try {
            for (int i = 0; i < count; i++) {
                try (OwnedFd fd = fds.take(i)) {
                    mapped.add(map(payload.region(i), fd, "SET_MEM_TABLE region " + i));
                }
            }
            publish(GuestMemory.of(mapped));
        } catch (IOException | RuntimeException e) {
            for (GuestRegion region : mapped) {
                region.close();
            }
            throw e;
        }
        LOG.log(DEBUG, "memory table: {0} region(s)", count);
    }

    /** ADD_MEM_REG: one more region. */
    void addRegion(MemoryRegion.Decoder payload, ReceivedFds fds) throws IOException {
        GuestMemory current = table.current();
        if (current.regionCount() >= VhostUserBackend.MAX_MEM_SLOTS) {
            throw new BackendException(BackendException.INVALID, "ADD_MEM_REG: all " + VhostUserBackend.MAX_MEM_SLOTS
                    + " slots are in use");
        }
        GuestRegion region;
        try (OwnedFd fd = fds.take(0)) {
            region = map(payload, fd, "ADD_MEM_REG");
        }
        try {
            publish(current.with(region));
        } catch (IOException | RuntimeException e) {
            region.close();
            throw e;
        }
        LOG.log(DEBUG, "memory region added at gpa {0}: {1} region(s)", Unsigned.hex(region.guestPhysAddr()),
                current.regionCount() + 1);
    }

    /** REM_MEM_REG: the region with exactly these addresses and size goes. */
    void removeRegion(MemoryRegion.Decoder payload) throws IOException {
        long gpa = payload.guestPhysAddr();
        long size = payload.memorySize();
        long userAddr = payload.userAddr();
        GuestMemory current = table.current();
        for (GuestRegion region : current.regions()) {
            if (region.guestPhysAddr() == gpa && region.sizeBytes() == size && region.userAddr() == userAddr) {
                publish(current.without(region));
                LOG.log(DEBUG, "memory region at gpa {0} removed: {1} region(s)", Unsigned.hex(gpa),
                        current.regionCount() - 1);
                return;
            }
        }
        throw new BackendException(BackendException.INVALID, "REM_MEM_REG: no region gpa=" + Unsigned.hex(gpa)
                + " size=" + Unsigned.hex(size) + " uaddr=" + Unsigned.hex(userAddr));
    }

    private static GuestRegion map(MemoryRegion.Decoder region, OwnedFd fd, String what) throws IOException {
        requireFdCovers(fd, region.mmapOffset(), region.memorySize(), what);
        return GuestRegion.map(region.guestPhysAddr(), region.memorySize(), region.userAddr(), region.mmapOffset(),
                fd, false);
    }

    /**
     * Refuses shared memory that claims more bytes than its fd holds: mmap accepts it, but touching a page
     * past the end of the file raises SIGBUS in this process. (A front-end can still shrink its file later;
     * the check stops the mistake and the attack at mapping time.)
     */
    static void requireFdCovers(OwnedFd fd, long offset, long size, String what) throws BackendException {
        long fileSize;
        try {
            fileSize = MemFd.size(fd.get());
        } catch (NativeException e) {
            throw new BackendException(BackendException.INVALID, what + ": the fd is not a mappable file: " + e.getMessage(), e);
        }
        if (offset < 0 || size < 0 || Unsigned.wraps(offset, size) || offset + size > fileSize) {
            throw new BackendException(BackendException.INVALID, what + ": the mapping ends past its file, offset="
                    + Unsigned.hex(offset) + ", size=" + Unsigned.hex(size) + ", file size=" + Unsigned.hex(fileSize));
        }
    }

    /** Switches every ring to the new table at a safe point of its worker, then unmaps what left. */
    private void publish(GuestMemory next) throws IOException {
        IovaSpace iova = session.iova();
        boolean iommu = iova.iommu();
        // With ACCESS_PLATFORM rings and buffers are addressed by IOVA: they see the IOTLB's views of the table.
        switchRingMemory(iommu ? iova.rebuild(next) : next);
        table.publish(next);
        if (iommu) {
            session.rings().retryAfterIotlbChange();
        }
    }

    /** Gives every started ring a new memory snapshot at a safe point of its worker. */
    void switchRingMemory(GuestMemory next) {
        Vring[] vrings = session.vrings();
        for (EventLoop worker : session.backend().workers()) {
            worker.awaitOnLoop(() -> {
                for (Vring v : vrings) {
                    RingState ring = v.state();
                    if (v.worker() != worker || ring == null) {
                        continue;
                    }
                    ring.memory = next;
                    if (ring.queue != null && ring.started) {
                        try {
                            ring.queue.setMemory(next);
                        } catch (VirtqueueException e) {
                            ring.markBroken(e);
                        }
                    }
                }
            });
        }
    }

    /** Unmaps the table (the rings are stopped by then). */
    @Override
    public void close() {
        table.close();
    }
}
