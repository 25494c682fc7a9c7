package dev.outproc.vhost.backend;

import dev.outproc.core.event.EventLoop;
import dev.outproc.core.fd.NativeException;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestMemoryHolder;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.memory.MappingBudget;
import dev.outproc.core.memory.MemFd;
import dev.outproc.core.memory.Unsigned;
import dev.outproc.core.transport.ReceivedFds;
import dev.outproc.core.virtqueue.VirtqueueException;
import dev.outproc.vhost.message.MemTable;
import dev.outproc.vhost.message.MemoryRegion;

import java.io.IOException;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

import static java.lang.System.Logger.Level.DEBUG;
import static java.lang.System.Logger.Level.WARNING;

/**
 * The memory-table handler: SET_MEM_TABLE, ADD_MEM_REG and REM_MEM_REG map and unmap the front-end's
 * shared memory, and every change reaches each ring at a safe point of its worker before the old
 * mappings go. The table is the connection's: closing the handler unmaps it.
 */
final class MemoryTable implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VhostUserBackend.class.getName());

    private final Session session;
    private final GuestMemoryHolder table = new GuestMemoryHolder();
    /** The mapping-budget share of each mapped region, released when the region is unmapped. */
    private final Map<GuestRegion, MappingBudget.Reservation> reservations = new IdentityHashMap<>();

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
                release(region);
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
            release(region);
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

    private GuestRegion map(MemoryRegion.Decoder region, OwnedFd fd, String what) throws IOException {
        admit(session, fd, region.mmapOffset(), region.memorySize(), what);
        try (MappingBudget.Reservation share = session.backend().mappingBudget().reserve(region.memorySize(), what)) {
            GuestRegion mapped = GuestRegion.map(region.guestPhysAddr(), region.memorySize(), region.userAddr(),
                    region.mmapOffset(), fd, false);
            reservations.put(mapped, share.keep());
            return mapped;
        }
    }

    private void release(GuestRegion region) {
        MappingBudget.Reservation share = reservations.remove(region);
        if (share != null) {
            share.release();
        }
    }

    /**
     * Admits a shared-memory fd a front-end sent, before it is mapped: seals it against shrinking where the
     * file allows (a peer that shrinks a file under our mapping makes the next access raise SIGBUS, which
     * aborts the whole JVM), applies the {@linkplain VhostUserBackend.UnsealableMemory policy} to a file that
     * cannot be sealed, and refuses a file that is already too small for the mapping. The seal comes first,
     * so the size checked is the size that stays.
     *
     * @param session the connection (for its policy)
     * @param fd the fd
     * @param offset where the mapping starts in the file
     * @param size the mapping's size
     * @param what the request, for messages
     * @throws BackendException when the fd is refused
     */
    static void admit(Session session, OwnedFd fd, long offset, long size, String what) throws BackendException {
        MemFd.ShrinkSeal seal;
        try {
            seal = MemFd.sealAgainstShrink(fd.get());
        } catch (NativeException e) {
            throw new BackendException(BackendException.INVALID, what + ": the fd is not a sealable file: " + e.getMessage(), e);
        }
        if (!seal.protects()) {
            VhostUserBackend.UnsealableMemory policy = session.backend().options().unsealableMemory();
            if (policy == VhostUserBackend.UnsealableMemory.REFUSE) {
                throw new BackendException(BackendException.INVALID, what + ": the memory fd cannot be sealed against "
                        + "shrinking (" + seal + ") and unsealable memory is refused");
            }
            LOG.log(WARNING, "{0}: the memory fd cannot be sealed against shrinking ({1}); mapped anyway: a front-end "
                    + "that truncates it can crash this process", what, seal);
        }
        requireFdCovers(fd, offset, size, what);
    }

    /**
     * Refuses shared memory that claims more bytes than its fd holds: mmap accepts it, but touching a page
     * past the end of the file raises SIGBUS in this process.
     */
    private static void requireFdCovers(OwnedFd fd, long offset, long size, String what) throws BackendException {
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
        GuestMemory previous = table.current();
        table.publish(next);
        releaseDropped(previous, next);
        if (iommu) {
            session.rings().retryAfterIotlbChange();
        }
    }

    /** Gives every started ring a new memory snapshot at a safe point of its worker. */
    void switchRingMemory(GuestMemory next) {
        Vring[] vrings = session.vrings();
        for (EventLoop worker : session.backend().workers()) {
            session.onWorker(worker, () -> {
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
        GuestMemory previous = table.current();
        table.close();
        releaseDropped(previous, GuestMemory.empty());
    }

    private void releaseDropped(GuestMemory previous, GuestMemory next) {
        for (GuestRegion region : previous.regions()) {
            if (!next.regions().contains(region)) {
                release(region);
            }
        }
    }
}
