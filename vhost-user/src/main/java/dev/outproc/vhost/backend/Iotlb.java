package dev.outproc.vhost.backend;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestMemoryException;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.memory.Unsigned;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The device IOTLB of a back-end with VIRTIO_F_ACCESS_PLATFORM (vhost-user.rst, "IOMMU support"): a
 * table of I/O virtual address ranges and the front-end addresses they map to, kept up to date by
 * IOTLB_MSG updates and invalidations. {@link #build} turns it into a {@link GuestMemory} whose
 * addresses are IOVAs, made of {@linkplain GuestRegion#view views} of the memory table, so the rings
 * and buffers of an IOMMU-enabled guest are read zero-copy with the same checks as guest-physical ones.
 * Each view carries its entry's permission: a write-only entry is not {@linkplain GuestRegion#readable()
 * readable} by the device, a read-only one not writable.
 *
 * <p>An update that overlaps existing entries replaces them; an invalidation removes every entry it
 * touches. At most {@link #MAX_ENTRIES} entries are kept, so a hostile front-end cannot grow it without
 * bound. Not thread-safe: the connection thread owns it.
 */
public final class Iotlb {
    /** The most entries one table holds. */
    public static final int MAX_ENTRIES = 4096;
    /** Access: read. */
    public static final int ACCESS_RO = 1;
    /** Access: write. */
    public static final int ACCESS_WO = 2;
    /** Access: read and write. */
    public static final int ACCESS_RW = 3;

    /**
     * One mapping.
     *
     * @param iova I/O virtual address
     * @param size bytes
     * @param userAddr front-end address
     * @param access {@link #ACCESS_RO}, {@link #ACCESS_WO} or {@link #ACCESS_RW}
     */
    public record Entry(long iova, long size, long userAddr, int access) {
    }

    private final TreeMap<Long, Entry> entries = new TreeMap<>(Long::compareUnsigned);

    /**
     * Adds a mapping (IOTLB_MSG update), replacing any it overlaps.
     *
     * @param iova start
     * @param size bytes, {@code > 0}
     * @param userAddr front-end address of {@code iova}
     * @param access access bits
     * @throws BackendException when the values are invalid or the table is full
     */
    public void update(long iova, long size, long userAddr, int access) throws BackendException {
        if (size == 0 || Unsigned.wraps(iova, size) || Unsigned.wraps(userAddr, size)) {
            throw new BackendException(BackendException.INVALID, "IOTLB update wraps or is empty, iova="
                    + Unsigned.hex(iova) + ", size=" + Unsigned.hex(size) + ", uaddr=" + Unsigned.hex(userAddr));
        }
        if (access < ACCESS_RO || access > ACCESS_RW) {
            throw new BackendException(BackendException.INVALID, "IOTLB access must be 1 (RO), 2 (WO) or 3 (RW), access=" + access);
        }
        invalidate(iova, size);
        if (entries.size() >= MAX_ENTRIES) {
            throw new BackendException(BackendException.INVALID, "IOTLB full, " + MAX_ENTRIES + " entries");
        }
        entries.put(iova, new Entry(iova, size, userAddr, access));
    }

    /**
     * Removes every mapping that overlaps a range (IOTLB_MSG invalidate).
     *
     * @param iova start
     * @param size bytes
     */
    public void invalidate(long iova, long size) {
        long last = Unsigned.wraps(iova, size) || size == 0 ? -1L : iova + size - 1;
        Map.Entry<Long, Entry> before = entries.floorEntry(iova);
        if (before != null && Long.compareUnsigned(before.getValue().iova() + before.getValue().size() - 1, iova) >= 0) {
            entries.remove(before.getKey());
        }
        Iterator<Map.Entry<Long, Entry>> it = entries.tailMap(iova, true).entrySet().iterator();
        while (it.hasNext()) {
            Map.Entry<Long, Entry> e = it.next();
            if (Long.compareUnsigned(e.getKey(), last) > 0) {
                break;
            }
            it.remove();
        }
    }

    /** Removes every mapping. */
    public void clear() {
        entries.clear();
    }

    /** {@return the number of mappings} */
    public int size() {
        return entries.size();
    }

    /** {@return the mappings, by IOVA} */
    public List<Entry> entries() {
        return List.copyOf(entries.values());
    }

    /**
     * Builds the IOVA space: one view per mapping (or per piece, where a mapping spans regions of the
     * memory table). Mappings whose front-end addresses are not (or no longer) in the memory table are
     * left out: accesses there miss, as if never mapped.
     *
     * @param memory the memory table (front-end addresses)
     * @return the IOVA space
     * @throws GuestMemoryException when views cannot be placed (cannot happen for a consistent table)
     */
    public GuestMemory build(GuestMemory memory) throws GuestMemoryException {
        List<GuestRegion> views = new ArrayList<>();
        for (Entry e : entries.values()) {
            List<GuestRegion> pieces = new ArrayList<>();
            long done = 0;
            while (done < e.size()) {
                long uaddr = e.userAddr() + done;
                long gpa;
                try {
                    gpa = memory.userToGpa(uaddr, 1);
                } catch (GuestMemoryException missing) {
                    pieces.clear();
                    break;
                }
                GuestRegion backing = memory.region(memory.regionIndexOfGpa(gpa, 1));
                long offset = gpa - backing.guestPhysAddr();
                long n = Math.min(e.size() - done, backing.sizeBytes() - offset);
                // The entry's permission travels with the view: a device read through a WO entry, or a
                // write through an RO one, is refused by the translation (as an address outside memory).
                pieces.add(GuestRegion.view(e.iova() + done, n, backing, offset,
                        (e.access() & ACCESS_RO) != 0, (e.access() & ACCESS_WO) != 0));
                done += n;
            }
            views.addAll(pieces);
        }
        return GuestMemory.of(views);
    }
}
