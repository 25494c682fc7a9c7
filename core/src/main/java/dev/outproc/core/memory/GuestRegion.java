package dev.outproc.core.memory;

import dev.outproc.core.fd.NativeException;
import dev.outproc.core.fd.OwnedFd;

import java.lang.foreign.MemorySegment;

/**
 * One region of guest memory: {@code sizeBytes} bytes at guest-physical address {@code guestPhysAddr},
 * known to the front-end at {@code userAddr}, backed by an fd at {@code mmapOffset}.
 *
 * <p>The region owns its {@link SharedMapping}; {@link #close()} unmaps it (after which accesses to
 * {@link #segment()} throw {@link IllegalStateException}). It may also keep its fd, for a front-end
 * that has to send it.
 */
public final class GuestRegion implements AutoCloseable {
    private final long guestPhysAddr;
    private final long sizeBytes;
    private final long userAddr;
    private final long mmapOffset;
    private final SharedMapping mapping;
    private final MemorySegment segment;
    private final OwnedFd fd;
    private final boolean readable;

    private GuestRegion(long guestPhysAddr, long sizeBytes, long userAddr, long mmapOffset,
                        SharedMapping mapping, OwnedFd fd) {
        this(guestPhysAddr, sizeBytes, userAddr, mmapOffset, mapping, mapping.segment(), fd, true);
    }

    private GuestRegion(long guestPhysAddr, long sizeBytes, long userAddr, long mmapOffset,
                        SharedMapping mapping, MemorySegment segment, OwnedFd fd, boolean readable) {
        this.guestPhysAddr = guestPhysAddr;
        this.sizeBytes = sizeBytes;
        this.userAddr = userAddr;
        this.mmapOffset = mmapOffset;
        this.mapping = mapping;
        this.segment = segment;
        this.fd = fd;
        this.readable = readable;
    }

    /**
     * A window onto part of another region's mapping, placed at its own address: how an IOTLB entry
     * (I/O virtual address to front-end address) becomes a region of an "IOVA space" {@link GuestMemory}.
     * The view maps nothing and owns nothing: {@link #close()} does nothing, and the view's segment dies
     * with the backing region's mapping (accesses then throw {@link IllegalStateException}).
     *
     * @param address where the view starts in its own address space (IOVA)
     * @param sizeBytes its size
     * @param backing the region whose bytes it shows
     * @param backingOffset where in {@code backing} it starts
     * @param writable whether writes through the view are allowed
     * @return the view, readable
     * @throws GuestMemoryException when the window is not inside {@code backing} or wraps
     */
    public static GuestRegion view(long address, long sizeBytes, GuestRegion backing, long backingOffset, boolean writable)
            throws GuestMemoryException {
        return view(address, sizeBytes, backing, backingOffset, true, writable);
    }

    /**
     * A window as {@link #view(long, long, GuestRegion, long, boolean)}, with its read permission too: an
     * IOTLB entry may be write-only (vhost-user.rst "IOMMU support", {@code perm} WO), and a device must not
     * read through it. The segment of a view that is not {@linkplain #readable() readable} is still a plain
     * segment (Java has no write-only memory): the translations that hand out guest memory for reading
     * ({@link GuestMemory#read}, a device queue's readable buffers and ring areas) check the flag and refuse.
     *
     * @param address where the view starts in its own address space (IOVA)
     * @param sizeBytes its size
     * @param backing the region whose bytes it shows
     * @param backingOffset where in {@code backing} it starts
     * @param readable whether the device may read through the view
     * @param writable whether the device may write through the view
     * @return the view
     * @throws GuestMemoryException when the window is not inside {@code backing} or wraps, or allows no access
     */
    public static GuestRegion view(long address, long sizeBytes, GuestRegion backing, long backingOffset,
                                   boolean readable, boolean writable) throws GuestMemoryException {
        if (!readable && !writable) {
            throw new GuestMemoryException("view allows neither reads nor writes, address=" + Unsigned.hex(address)
                    + ", sizeBytes=" + Unsigned.hex(sizeBytes));
        }
        validate(address, sizeBytes, address, 0);
        if (backingOffset < 0 || !Unsigned.within(backingOffset, sizeBytes, 0, backing.sizeBytes())) {
            throw new GuestMemoryException("view outside its backing region, offset=" + Unsigned.hex(backingOffset)
                    + ", sizeBytes=" + Unsigned.hex(sizeBytes) + ", backing=" + backing);
        }
        MemorySegment slice = backing.segment().asSlice(backingOffset, sizeBytes);
        return new GuestRegion(address, sizeBytes, address, backing.mmapOffset() + backingOffset, null,
                writable ? slice : slice.asReadOnly(), null, readable && backing.readable());
    }

    /**
     * Maps a region described by a peer. The descriptor's values are validated (non-zero size, no
     * wrap past 2^64 of either address range), and the file must reach past {@code mmapOffset + sizeBytes}
     * ({@link MemFd#requireCovers}), before anything is mapped. Whether the file may shrink later is the
     * caller's policy: see {@link MemFd#sealAgainstShrink}.
     *
     * @param guestPhysAddr guest-physical start
     * @param sizeBytes size in bytes
     * @param userAddr the front-end's virtual address of the start
     * @param mmapOffset offset of the start in the fd
     * @param fd the backing file; stays owned by the caller unless {@code keepFd}
     * @param keepFd whether the region takes the fd (closing it on {@link #close()})
     * @return the mapped region
     * @throws GuestMemoryException when the descriptor is not valid or the file is too small
     * @throws NativeException when fstat or mmap fails
     */
    public static GuestRegion map(long guestPhysAddr, long sizeBytes, long userAddr, long mmapOffset,
                                  OwnedFd fd, boolean keepFd) throws GuestMemoryException, NativeException {
        validate(guestPhysAddr, sizeBytes, userAddr, mmapOffset);
        MemFd.requireCovers(fd.get(), mmapOffset, sizeBytes); // a mapping past the end would SIGBUS when touched
        SharedMapping mapping = SharedMapping.map(fd.get(), mmapOffset, sizeBytes, true);
        return new GuestRegion(guestPhysAddr, sizeBytes, userAddr, mmapOffset, mapping, keepFd ? fd.transfer() : null);
    }

    /**
     * Creates a new memfd-backed region (the front-end's or a test's guest RAM). The region keeps the fd.
     *
     * @param guestPhysAddr guest-physical start
     * @param sizeBytes size in bytes
     * @param userAddr the address to announce as the front-end's virtual address
     * @return the region
     * @throws GuestMemoryException when the values are not valid
     * @throws NativeException when memfd or mmap fails
     */
    public static GuestRegion allocate(long guestPhysAddr, long sizeBytes, long userAddr)
            throws GuestMemoryException, NativeException {
        validate(guestPhysAddr, sizeBytes, userAddr, 0);
        try (OwnedFd fd = MemFd.create("outproc-guest-ram", sizeBytes)) {
            // As QEMU's memory-backend-memfd does (seal=on), minus F_SEAL_SEAL: a back-end may seal more.
            MemFd.addSeals(fd, MemFd.SEAL_SHRINK | MemFd.SEAL_GROW);
            return map(guestPhysAddr, sizeBytes, userAddr, 0, fd, true);
        }
    }

    static void validate(long guestPhysAddr, long sizeBytes, long userAddr, long mmapOffset) throws GuestMemoryException {
        if (sizeBytes == 0) {
            throw new GuestMemoryException("region size is zero, guestPhysAddr=" + Unsigned.hex(guestPhysAddr));
        }
        if (sizeBytes < 0) {
            throw new GuestMemoryException("region size too large, sizeBytes=" + Unsigned.hex(sizeBytes));
        }
        if (Unsigned.wraps(guestPhysAddr, sizeBytes)) {
            throw new GuestMemoryException("region wraps past 2^64, guestPhysAddr=" + Unsigned.hex(guestPhysAddr)
                    + ", sizeBytes=" + Unsigned.hex(sizeBytes));
        }
        if (Unsigned.wraps(userAddr, sizeBytes)) {
            throw new GuestMemoryException("region wraps past 2^64, userAddr=" + Unsigned.hex(userAddr)
                    + ", sizeBytes=" + Unsigned.hex(sizeBytes));
        }
        if (mmapOffset < 0 || mmapOffset + sizeBytes < 0) {
            throw new GuestMemoryException("mmap offset out of range, mmapOffset=" + Unsigned.hex(mmapOffset)
                    + ", sizeBytes=" + Unsigned.hex(sizeBytes));
        }
    }

    /** {@return the guest-physical address of the first byte} */
    public long guestPhysAddr() {
        return guestPhysAddr;
    }

    /** {@return the size in bytes} */
    public long sizeBytes() {
        return sizeBytes;
    }

    /** {@return the front-end's virtual address of the first byte} */
    public long userAddr() {
        return userAddr;
    }

    /** {@return the offset of the first byte in the backing fd} */
    public long mmapOffset() {
        return mmapOffset;
    }

    /** {@return the mapped bytes (spatial bounds {@code [0, sizeBytes)}, temporal: until close)} */
    public MemorySegment segment() {
        return segment;
    }

    /** {@return whether the device may read this region (false for a view of a write-only IOTLB entry)} */
    public boolean readable() {
        return readable;
    }

    /** {@return whether the device may write this region (false for a read-only mapping or view)} */
    public boolean writable() {
        return !segment.isReadOnly();
    }

    /** {@return the fd this region keeps, or {@code null}} */
    public OwnedFd fd() {
        return fd;
    }

    /**
     * {@return whether the guest-physical range lies wholly in this region}
     *
     * @param gpa start
     * @param length byte count
     */
    public boolean containsGpa(long gpa, long length) {
        return Unsigned.within(gpa, length, guestPhysAddr, sizeBytes);
    }

    /**
     * {@return whether the front-end virtual range lies wholly in this region}
     *
     * @param uaddr start
     * @param length byte count
     */
    public boolean containsUser(long uaddr, long length) {
        return Unsigned.within(uaddr, length, userAddr, sizeBytes);
    }

    /** {@return whether the mapping is still alive} */
    public boolean isMapped() {
        return segment.scope().isAlive();
    }

    /** {@return whether this region is a {@linkplain #view view} of another one} */
    public boolean isView() {
        return mapping == null;
    }

    /** Unmaps the region and closes its fd if it keeps one; a view does nothing. */
    @Override
    public void close() {
        if (mapping != null) {
            mapping.close();
        }
        if (fd != null) {
            fd.close();
        }
    }

    @Override
    public String toString() {
        return "GuestRegion[gpa=" + Unsigned.hex(guestPhysAddr) + ", size=" + Unsigned.hex(sizeBytes)
                + ", uaddr=" + Unsigned.hex(userAddr) + ", mmapOffset=" + Unsigned.hex(mmapOffset)
                + (readable ? writable() ? "" : ", read-only" : ", write-only") + "]";
    }
}
