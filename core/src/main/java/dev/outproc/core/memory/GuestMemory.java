package dev.outproc.core.memory;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * An immutable snapshot of the guest's memory table: regions that overlap neither in guest-physical
 * nor in front-end virtual address space, sorted by guest-physical address.
 *
 * <p>Translations check every range: {@link #slice(long, long)} returns a slice only when the whole
 * range lies in one region and otherwise throws {@link GuestMemoryException}; {@link #forEachPiece}
 * walks a range that spans adjacent regions piece by piece. Nothing is ever silently truncated.
 * All addresses are unsigned 64-bit values.
 *
 * <p>Lookups ({@link #regionIndexOfGpa}) allocate nothing; slicing allocates one segment view.
 * Snapshots are published by {@link GuestMemoryHolder}; regions are shared between snapshots and
 * are unmapped by the holder when no longer part of the table.
 */
public final class GuestMemory {
    private static final GuestMemory EMPTY = new GuestMemory(new GuestRegion[0]);

    private final GuestRegion[] byGpa;
    private final long[] gpaStarts;
    private final GuestRegion[] byUser;
    private final long[] userStarts;

    private GuestMemory(GuestRegion[] regions) {
        this.byGpa = regions.clone();
        Arrays.sort(byGpa, Comparator.comparing(GuestRegion::guestPhysAddr, Long::compareUnsigned));
        this.gpaStarts = new long[byGpa.length];
        for (int i = 0; i < byGpa.length; i++) {
            gpaStarts[i] = byGpa[i].guestPhysAddr();
        }
        this.byUser = regions.clone();
        Arrays.sort(byUser, Comparator.comparing(GuestRegion::userAddr, Long::compareUnsigned));
        this.userStarts = new long[byUser.length];
        for (int i = 0; i < byUser.length; i++) {
            userStarts[i] = byUser[i].userAddr();
        }
    }

    /** {@return the memory with no regions} */
    public static GuestMemory empty() {
        return EMPTY;
    }

    /**
     * Builds a snapshot.
     *
     * @param regions the regions
     * @return the snapshot
     * @throws GuestMemoryException when two regions overlap in guest-physical or user address space
     */
    public static GuestMemory of(List<GuestRegion> regions) throws GuestMemoryException {
        GuestMemory memory = new GuestMemory(regions.toArray(new GuestRegion[0]));
        memory.checkOverlap();
        return memory;
    }

    private void checkOverlap() throws GuestMemoryException {
        for (int i = 1; i < byGpa.length; i++) {
            GuestRegion previous = byGpa[i - 1];
            long previousLast = previous.guestPhysAddr() + previous.sizeBytes() - 1;
            if (Long.compareUnsigned(byGpa[i].guestPhysAddr(), previousLast) <= 0) {
                throw new GuestMemoryException("regions overlap in guest-physical space: " + previous + " and " + byGpa[i]);
            }
        }
        for (int i = 1; i < byUser.length; i++) {
            GuestRegion previous = byUser[i - 1];
            long previousLast = previous.userAddr() + previous.sizeBytes() - 1;
            if (Long.compareUnsigned(byUser[i].userAddr(), previousLast) <= 0) {
                throw new GuestMemoryException("regions overlap in user address space: " + previous + " and " + byUser[i]);
            }
        }
    }

    /**
     * {@return a new snapshot with one more region}
     *
     * @param region the region to add
     * @throws GuestMemoryException when it overlaps a region of this snapshot
     */
    public GuestMemory with(GuestRegion region) throws GuestMemoryException {
        List<GuestRegion> list = new ArrayList<>(Arrays.asList(byGpa));
        list.add(region);
        return of(list);
    }

    /**
     * {@return a new snapshot without the given region (identity)}
     *
     * @param region the region to drop
     */
    public GuestMemory without(GuestRegion region) {
        List<GuestRegion> list = new ArrayList<>(Arrays.asList(byGpa));
        list.remove(region);
        return new GuestMemory(list.toArray(new GuestRegion[0]));
    }

    /** {@return the regions, by guest-physical address} */
    public List<GuestRegion> regions() {
        return List.of(byGpa);
    }

    /** {@return the number of regions} */
    public int regionCount() {
        return byGpa.length;
    }

    /**
     * {@return the region at an index of {@link #regions()}}
     *
     * @param index the index
     */
    public GuestRegion region(int index) {
        return byGpa[index];
    }

    /** {@return the total size of all regions in bytes} */
    public long totalSizeBytes() {
        long total = 0;
        for (GuestRegion r : byGpa) {
            total += r.sizeBytes();
        }
        return total;
    }

    /**
     * Finds the region that holds the whole range. Allocates nothing.
     *
     * @param gpa guest-physical start
     * @param length byte count (0 is allowed)
     * @return the region's index, or -1 when no single region holds the range
     */
    public int regionIndexOfGpa(long gpa, long length) {
        int i = floor(gpaStarts, gpa);
        return i >= 0 && byGpa[i].containsGpa(gpa, length) ? i : -1;
    }

    private static int floor(long[] starts, long address) {
        int lo = 0;
        int hi = starts.length - 1;
        int found = -1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (Long.compareUnsigned(starts[mid], address) <= 0) {
                found = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        return found;
    }

    /**
     * {@return whether one region holds the whole guest-physical range}
     *
     * @param gpa start
     * @param length byte count
     */
    public boolean contains(long gpa, long length) {
        return regionIndexOfGpa(gpa, length) >= 0;
    }

    /**
     * Translates a guest-physical range to a slice of mapped memory.
     *
     * @param gpa start
     * @param length byte count
     * @return the slice
     * @throws GuestMemoryException when no single region holds the range (outside memory, or across a boundary)
     */
    public MemorySegment slice(long gpa, long length) throws GuestMemoryException {
        if (length < 0) {
            throw new GuestMemoryException("length too large, gpa=" + Unsigned.hex(gpa) + ", length=" + Unsigned.hex(length));
        }
        int i = regionIndexOfGpa(gpa, length);
        if (i < 0) {
            throw outside("guest-physical", gpa, length, gpaStarts, byGpa, true);
        }
        GuestRegion r = byGpa[i];
        return r.segment().asSlice(gpa - r.guestPhysAddr(), length);
    }

    /**
     * Translates a front-end virtual address range to its guest-physical address.
     *
     * @param userAddr start in the front-end's address space
     * @param length byte count
     * @return the guest-physical address of {@code userAddr}
     * @throws GuestMemoryException when no single region holds the range
     */
    public long userToGpa(long userAddr, long length) throws GuestMemoryException {
        int i = floor(userStarts, userAddr);
        if (i < 0 || !byUser[i].containsUser(userAddr, length)) {
            throw outside("user", userAddr, length, userStarts, byUser, false);
        }
        GuestRegion r = byUser[i];
        return r.guestPhysAddr() + (userAddr - r.userAddr());
    }

    /**
     * Translates a front-end virtual address range to a slice of mapped memory.
     *
     * @param userAddr start in the front-end's address space
     * @param length byte count
     * @return the slice
     * @throws GuestMemoryException when no single region holds the range
     */
    public MemorySegment sliceUser(long userAddr, long length) throws GuestMemoryException {
        return slice(userToGpa(userAddr, length), length);
    }

    private static GuestMemoryException outside(String space, long start, long length, long[] starts,
                                                GuestRegion[] regions, boolean gpa) {
        if (Unsigned.wraps(start, length)) {
            return new GuestMemoryException(space + " range wraps past 2^64, address=" + Unsigned.hex(start)
                    + ", length=" + Unsigned.hex(length));
        }
        int i = floor(starts, start);
        if (i >= 0) {
            GuestRegion r = regions[i];
            boolean startInside = gpa ? r.containsGpa(start, 0) && Long.compareUnsigned(start - r.guestPhysAddr(), r.sizeBytes()) < 0
                    : r.containsUser(start, 0) && Long.compareUnsigned(start - r.userAddr(), r.sizeBytes()) < 0;
            if (startInside) {
                return new GuestMemoryException(space + " range crosses the end of its region, address="
                        + Unsigned.hex(start) + ", length=" + Unsigned.hex(length) + ", region=" + r);
            }
        }
        return new GuestMemoryException(space + " range is outside guest memory, address=" + Unsigned.hex(start)
                + ", length=" + Unsigned.hex(length));
    }

    /** Receives the pieces of a range that spans regions. */
    @FunctionalInterface
    public interface PieceConsumer {
        /**
         * Receives one piece.
         *
         * @param rangeOffset offset of this piece within the whole range
         * @param piece the mapped bytes of this piece
         * @throws java.io.IOException to stop the walk
         */
        void accept(long rangeOffset, MemorySegment piece) throws java.io.IOException;
    }

    /**
     * Walks a guest-physical range that may span adjacent regions, one piece per region.
     *
     * @param gpa start
     * @param length byte count
     * @param consumer receives each piece in order
     * @throws GuestMemoryException when any byte of the range is outside guest memory (checked before
     *         the first piece is handed out)
     * @throws java.io.IOException what the consumer throws
     */
    public void forEachPiece(long gpa, long length, PieceConsumer consumer) throws java.io.IOException {
        checkPieces(gpa, length, false, false);
        walkPieces(gpa, length, consumer);
    }

    private void walkPieces(long gpa, long length, PieceConsumer consumer) throws java.io.IOException {
        long done = 0;
        while (done < length) {
            long at = gpa + done;
            GuestRegion r = byGpa[floor(gpaStarts, at)];
            long offset = at - r.guestPhysAddr();
            long n = Math.min(length - done, r.sizeBytes() - offset);
            consumer.accept(done, r.segment().asSlice(offset, n));
            done += n;
        }
    }

    private void checkPieces(long gpa, long length, boolean reads, boolean writes) throws GuestMemoryException {
        if (length < 0 || Unsigned.wraps(gpa, length)) {
            throw new GuestMemoryException("guest-physical range wraps past 2^64, address=" + Unsigned.hex(gpa)
                    + ", length=" + Unsigned.hex(length));
        }
        long done = 0;
        while (done < length) {
            long at = gpa + done;
            int i = floor(gpaStarts, at);
            if (i < 0 || !byGpa[i].containsGpa(at, 1)) {
                throw new GuestMemoryException("guest-physical range is outside guest memory, address="
                        + Unsigned.hex(gpa) + ", length=" + Unsigned.hex(length) + ", first missing byte=" + Unsigned.hex(at));
            }
            GuestRegion r = byGpa[i];
            if ((reads && !r.readable()) || (writes && !r.writable())) {
                throw new GuestMemoryException("guest-physical range is not " + (reads ? "readable" : "writable")
                        + ", address=" + Unsigned.hex(gpa) + ", length=" + Unsigned.hex(length)
                        + ", first refused byte=" + Unsigned.hex(at) + ", region=" + r);
            }
            done += Math.min(length - done, r.sizeBytes() - (at - r.guestPhysAddr()));
        }
    }

    /**
     * Copies guest memory into {@code destination}, across regions if needed.
     *
     * @param gpa guest-physical start
     * @param destination where to copy (its whole size)
     * @throws GuestMemoryException when the range is not all in guest memory, or a part of it is not
     *         {@linkplain GuestRegion#readable() readable}
     */
    public void read(long gpa, MemorySegment destination) throws GuestMemoryException {
        try {
            checkPieces(gpa, destination.byteSize(), true, false);
            walkPieces(gpa, destination.byteSize(),
                    (offset, piece) -> MemorySegment.copy(piece, 0, destination, offset, piece.byteSize()));
        } catch (GuestMemoryException e) {
            throw e;
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Copies {@code source} into guest memory, across regions if needed.
     *
     * @param gpa guest-physical start
     * @param source what to copy (its whole size)
     * @throws GuestMemoryException when the range is not all in guest memory, or a part of it is not
     *         {@linkplain GuestRegion#writable() writable} (nothing is written then)
     */
    public void write(long gpa, MemorySegment source) throws GuestMemoryException {
        try {
            checkPieces(gpa, source.byteSize(), false, true);
            walkPieces(gpa, source.byteSize(),
                    (offset, piece) -> MemorySegment.copy(source, offset, piece, 0, piece.byteSize()));
        } catch (GuestMemoryException e) {
            throw e;
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public String toString() {
        return "GuestMemory" + Arrays.toString(byGpa);
    }
}
