package dev.outproc.vfio.server;

import dev.outproc.core.fd.Errno;
import dev.outproc.core.fd.NativeException;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.DirtyLog;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestMemoryException;
import dev.outproc.core.memory.GuestMemoryHolder;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.vfio.message.DmaMap;
import dev.outproc.vfio.message.VfioUserProtocolException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * The client memory a device may reach by DMA: the windows of {@code VFIO_USER_DMA_MAP}. A window with an
 * fd is mapped into this process (a {@link GuestRegion}, published in a {@link GuestMemory} snapshot whose
 * guest-physical addresses are the DMA addresses); a window without one is reached through
 * {@code VFIO_USER_DMA_READ/WRITE} messages to the client.
 *
 * <h2 id="concurrency">Concurrency</h2>
 * Device threads call {@link #read} and {@link #write} at any time; each access holds a read lock on the
 * window table for the copy, and {@link #unmap} takes the write lock, so an unmap waits until no device
 * thread is inside the window it removes, and no access can start in a window once its unmap returned
 * (the weakness libvfio-user issue #594 describes). Message-based accesses do not hold the lock while they
 * wait for the client's reply (the unmap may be the very message the client sends first).
 *
 * <p>Writes through this space are logged page by page while DMA logging runs
 * ({@code VFIO_DEVICE_FEATURE_DMA_LOGGING_START}).
 */
public final class DmaSpace {
    /** Transport of accesses to windows without an fd. */
    public interface MessageDma {
        /**
         * Reads client memory with {@code VFIO_USER_DMA_READ}.
         *
         * @param address the DMA address
         * @param destination where the bytes go
         * @throws IOException when the client refuses or goes
         */
        void dmaRead(long address, MemorySegment destination) throws IOException;

        /**
         * Writes client memory with {@code VFIO_USER_DMA_WRITE}.
         *
         * @param address the DMA address
         * @param source the bytes
         * @throws IOException when the client refuses or goes
         */
        void dmaWrite(long address, MemorySegment source) throws IOException;
    }

    /**
     * One DMA window.
     *
     * @param address the DMA address
     * @param sizeBytes the size
     * @param flags READ and WRITE bits of {@link DmaMap}
     * @param region the mapping, or {@code null} for a message-only window
     */
    public record Window(long address, long sizeBytes, int flags, GuestRegion region) {
        boolean contains(long at, long length) {
            return Long.compareUnsigned(at, address) >= 0 && Long.compareUnsigned(length, sizeBytes) <= 0
                    && Long.compareUnsigned(at - address, sizeBytes - length) <= 0;
        }

        boolean overlaps(long at, long length) {
            return Long.compareUnsigned(at, address + sizeBytes - 1) <= 0 && Long.compareUnsigned(address, at + length - 1) <= 0;
        }
    }

    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private final TreeMap<Long, Window> windows = new TreeMap<>(Long::compareUnsigned);
    private final GuestMemoryHolder memory = new GuestMemoryHolder();
    private final long maxWindows;
    private final long maxWindowBytes;
    private final MessageDma messages;
    private volatile DirtyTracking dirty;

    /**
     * Creates an empty space.
     *
     * @param maxWindows the most windows at once ({@code max_dma_maps})
     * @param maxWindowBytes the largest window accepted
     * @param messages the transport for windows without an fd
     */
    public DmaSpace(long maxWindows, long maxWindowBytes, MessageDma messages) {
        this.maxWindows = maxWindows;
        this.maxWindowBytes = maxWindowBytes;
        this.messages = messages;
    }

    /**
     * Adds a window ({@code VFIO_USER_DMA_MAP}).
     *
     * @param address the DMA address
     * @param sizeBytes the size
     * @param flags READ and WRITE bits
     * @param fd the fd to map (closed by the caller afterwards), or {@code null}
     * @param fileOffset where the window starts in the fd
     * @throws VfioUserProtocolException EEXIST when it overlaps a window, ENOSPC over {@code max_dma_maps},
     *         E2BIG over the size cap, EINVAL for an unaligned window, the mmap errno when mapping fails
     */
    public void map(long address, long sizeBytes, int flags, OwnedFd fd, long fileOffset) throws VfioUserProtocolException {
        if ((address & 4095) != 0 || (sizeBytes & 4095) != 0 || (fileOffset & 4095) != 0) {
            throw new VfioUserProtocolException(Errno.EINVAL, "DMA window not 4 KiB aligned, address=0x" + Long.toHexString(address)
                    + " size=0x" + Long.toHexString(sizeBytes) + " offset=0x" + Long.toHexString(fileOffset));
        }
        if (Long.compareUnsigned(sizeBytes, maxWindowBytes) > 0) {
            throw new VfioUserProtocolException(Errno.E2BIG, "DMA window of 0x" + Long.toHexString(sizeBytes)
                    + " bytes exceeds 0x" + Long.toHexString(maxWindowBytes));
        }
        lock.writeLock().lock();
        try {
            if (windows.size() >= maxWindows) {
                throw new VfioUserProtocolException(Errno.ENOSPC, "already " + windows.size() + " DMA windows, max_dma_maps=" + maxWindows);
            }
            for (Window w : windows.values()) {
                if (w.overlaps(address, sizeBytes)) {
                    throw new VfioUserProtocolException(Errno.EEXIST, "DMA window 0x" + Long.toHexString(address) + "+0x"
                            + Long.toHexString(sizeBytes) + " overlaps 0x" + Long.toHexString(w.address()) + "+0x" + Long.toHexString(w.sizeBytes()));
                }
            }
            GuestRegion region = null;
            if (fd != null) {
                try {
                    region = GuestRegion.map(address, sizeBytes, address, fileOffset, fd, false);
                } catch (NativeException e) {
                    throw new VfioUserProtocolException(e.errno() == 0 ? Errno.EINVAL : e.errno(), "DMA_MAP mmap failed: " + e.getMessage());
                } catch (GuestMemoryException e) {
                    throw new VfioUserProtocolException(Errno.EINVAL, "DMA_MAP: " + e.getMessage());
                }
                try {
                    memory.publish(memory.current().with(region));
                } catch (GuestMemoryException e) {
                    region.close();
                    throw new VfioUserProtocolException(Errno.EEXIST, "DMA_MAP: " + e.getMessage());
                }
            }
            windows.put(address, new Window(address, sizeBytes, flags, region));
        } finally {
            lock.writeLock().unlock();
        }
    }

    /**
     * Removes the window with exactly this address and size ({@code VFIO_USER_DMA_UNMAP}); waits until no
     * device thread is inside it.
     *
     * @param address the DMA address
     * @param sizeBytes the size
     * @throws VfioUserProtocolException ENOENT when no window matches exactly
     */
    public void unmap(long address, long sizeBytes) throws VfioUserProtocolException {
        lock.writeLock().lock();
        try {
            Window w = windows.get(address);
            if (w == null || w.sizeBytes() != sizeBytes) {
                throw new VfioUserProtocolException(Errno.ENOENT, "no DMA window 0x" + Long.toHexString(address) + "+0x"
                        + Long.toHexString(sizeBytes));
            }
            windows.remove(address);
            release(w);
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** Removes every window ({@code VFIO_DMA_UNMAP_FLAG_ALL}, and when the client goes). */
    public void unmapAll() {
        lock.writeLock().lock();
        try {
            for (Window w : windows.values()) {
                release(w);
            }
            windows.clear();
        } finally {
            lock.writeLock().unlock();
        }
    }

    private void release(Window w) {
        if (w.region() != null) {
            memory.publish(memory.current().without(w.region()));
            w.region().close();
        }
    }

    /** {@return the windows, by address} */
    public List<Window> windows() {
        lock.readLock().lock();
        try {
            return List.copyOf(windows.values());
        } finally {
            lock.readLock().unlock();
        }
    }

    /** {@return the fd-backed windows as guest memory (DMA address = guest-physical address)} */
    public GuestMemory guestMemory() {
        return memory.current();
    }

    /**
     * Reads client memory; the range must lie in one readable window.
     *
     * @param address the DMA address
     * @param destination where the bytes go
     * @throws IOException EFAULT outside every window, EPERM without READ, or the client's error
     */
    public void read(long address, MemorySegment destination) throws IOException {
        long length = destination.byteSize();
        lock.readLock().lock();
        boolean locked = true;
        try {
            Window w = find(address, length, DmaMap.FLAG_READ);
            if (w.region() != null) {
                MemorySegment.copy(w.region().segment(), address - w.address(), destination, 0, length);
                return;
            }
            lock.readLock().unlock();
            locked = false;
            messages.dmaRead(address, destination);
        } finally {
            if (locked) {
                lock.readLock().unlock();
            }
        }
    }

    /**
     * Writes client memory; the range must lie in one writable window. Logged when DMA logging runs.
     *
     * @param address the DMA address
     * @param source the bytes
     * @throws IOException EFAULT outside every window, EPERM without WRITE, or the client's error
     */
    public void write(long address, MemorySegment source) throws IOException {
        long length = source.byteSize();
        lock.readLock().lock();
        boolean locked = true;
        try {
            Window w = find(address, length, DmaMap.FLAG_WRITE);
            DirtyTracking d = dirty;
            if (d != null) {
                d.mark(address, length);
            }
            if (w.region() != null) {
                MemorySegment.copy(source, 0, w.region().segment(), address - w.address(), length);
                return;
            }
            lock.readLock().unlock();
            locked = false;
            messages.dmaWrite(address, source);
        } finally {
            if (locked) {
                lock.readLock().unlock();
            }
        }
    }

    private Window find(long address, long length, int flag) throws VfioUserProtocolException {
        Map.Entry<Long, Window> e = windows.floorEntry(address);
        if (e == null || length == 0 || !e.getValue().contains(address, length)) {
            throw new VfioUserProtocolException(Errno.EFAULT, "DMA access 0x" + Long.toHexString(address) + "+0x"
                    + Long.toHexString(length) + " is not inside one DMA window");
        }
        if ((e.getValue().flags() & flag) == 0) {
            throw new VfioUserProtocolException(Errno.EPERM, "DMA window 0x" + Long.toHexString(e.getKey())
                    + " does not allow " + (flag == DmaMap.FLAG_READ ? "reads" : "writes"));
        }
        return e.getValue();
    }

    /**
     * Starts DMA logging ({@code DMA_LOGGING_START}): writes into the ranges are logged per page.
     *
     * @param pageSize the tracking page size, a power of two of at least 4096
     * @param ranges IOVA start and length pairs; empty logs every current window
     * @throws VfioUserProtocolException EINVAL for a bad page size or range, EBUSY when logging runs
     */
    public void startLogging(long pageSize, List<long[]> ranges) throws VfioUserProtocolException {
        if (pageSize < 4096 || Long.bitCount(pageSize) != 1 || pageSize > (1L << 30)) {
            throw new VfioUserProtocolException(Errno.EINVAL, "DMA logging page size must be a power of two in [4096, 1 GiB], page_size=" + pageSize);
        }
        if (dirty != null) {
            throw new VfioUserProtocolException(Errno.EBUSY, "DMA logging already started");
        }
        List<long[]> effective = new ArrayList<>(ranges);
        if (effective.isEmpty()) {
            for (Window w : windows()) {
                effective.add(new long[] {w.address(), w.sizeBytes()});
            }
        }
        dirty = new DirtyTracking(pageSize, effective);
    }

    /** Stops DMA logging ({@code DMA_LOGGING_STOP}); harmless when not logging. */
    public void stopLogging() {
        dirty = null;
    }

    /** {@return whether DMA logging runs} */
    public boolean isLogging() {
        return dirty != null;
    }

    /**
     * {@return the log of the running DMA logging session keyed by DMA address (bit {@code p} is the page at
     * {@code p * pageSize}), or {@code null} when logging is stopped}
     *
     * <p>For device code that writes client memory through {@link #guestMemory()} rather than {@link #write}
     * (virtqueues: {@code DeviceQueue.setDirtyLog}); its bits are reported by {@code DMA_LOGGING_REPORT} with
     * those of {@link #write}. It covers DMA addresses up to the end of the highest logged range, when that is at
     * most {@link #DEVICE_LOG_MAX_ADDRESS}; above it this returns {@code null} and such devices cannot log.
     */
    public DirtyLog deviceWriteLog() {
        DirtyTracking d = dirty;
        return d == null ? null : d.absolute;
    }

    /** The highest DMA address {@link #deviceWriteLog()} covers (a 2 MiB bitmap at 4 KiB pages). */
    public static final long DEVICE_LOG_MAX_ADDRESS = 1L << 36;

    /**
     * Reports and clears the pages written in a range ({@code DMA_LOGGING_REPORT}).
     *
     * @param iova the start of the range
     * @param length its length
     * @param pageSize the bitmap's page size, a power of two
     * @param bitmap receives one bit per page (u64 words, bit {@code n % 64} of word {@code n / 64})
     * @throws VfioUserProtocolException EINVAL when logging is off, the page size is bad or the range is not
     *         inside one logged range
     */
    public void report(long iova, long length, long pageSize, MemorySegment bitmap) throws VfioUserProtocolException {
        DirtyTracking d = dirty;
        if (d == null) {
            throw new VfioUserProtocolException(Errno.EINVAL, "DMA_LOGGING_REPORT while logging is stopped");
        }
        if (pageSize == 0 || Long.bitCount(pageSize) != 1) {
            throw new VfioUserProtocolException(Errno.EINVAL, "DMA_LOGGING_REPORT page size must be a power of two, page_size=" + pageSize);
        }
        d.report(iova, length, pageSize, bitmap);
    }

    /** The bitmaps of a DMA logging session, one per range. */
    private static final class DirtyTracking {
        private static final java.lang.invoke.VarHandle WORD = java.lang.foreign.ValueLayout.JAVA_LONG.varHandle();
        private final long pageSize;
        private final long[] starts;
        private final long[] lengths;
        private final DirtyLog[] logs;
        /** The same session keyed by DMA address, for writes that bypass {@link #mark}; null above the cap. */
        final DirtyLog absolute;

        DirtyTracking(long pageSize, List<long[]> ranges) throws VfioUserProtocolException {
            this.pageSize = pageSize;
            int n = ranges.size();
            starts = new long[n];
            lengths = new long[n];
            logs = new DirtyLog[n];
            for (int i = 0; i < n; i++) {
                long start = ranges.get(i)[0];
                long length = ranges.get(i)[1];
                if (length <= 0 || length > (1L << 40) || Long.compareUnsigned(start + length - 1, start) < 0) {
                    throw new VfioUserProtocolException(Errno.EINVAL, "DMA logging range 0x" + Long.toHexString(start) + "+0x"
                            + Long.toHexString(length) + " is empty, too large or wraps");
                }
                starts[i] = start;
                lengths[i] = length;
                long bytes = DirtyLog.bitmapBytesFor(length, pageSize);
                logs[i] = DirtyLog.over(Arena.ofAuto().allocate(bytes, 8), pageSize);
            }
            long end = 0;
            boolean aligned = true;
            for (int i = 0; i < n; i++) {
                end = Math.max(end, starts[i] + lengths[i]);
                aligned &= starts[i] % pageSize == 0;
            }
            absolute = aligned && end > 0 && end <= DEVICE_LOG_MAX_ADDRESS
                    ? DirtyLog.over(Arena.ofAuto().allocate(DirtyLog.bitmapBytesFor(end, pageSize), 8), pageSize) : null;
        }

        private boolean isDirty(int range, long page) {
            return logs[range].isDirty(page) || (absolute != null && absolute.isDirty(starts[range] / pageSize + page));
        }

        void mark(long address, long length) {
            for (int i = 0; i < starts.length; i++) {
                long start = starts[i];
                long end = start + lengths[i];
                long from = Long.compareUnsigned(address, start) > 0 ? address : start;
                long to = Long.compareUnsigned(address + length, end) < 0 ? address + length : end;
                if (Long.compareUnsigned(from, to) < 0) {
                    logs[i].mark(from - start, to - from);
                }
            }
        }

        void report(long iova, long length, long reportPageSize, MemorySegment bitmap) throws VfioUserProtocolException {
            for (int i = 0; i < starts.length; i++) {
                if (Long.compareUnsigned(iova, starts[i]) >= 0 && Long.compareUnsigned(length, lengths[i]) <= 0
                        && Long.compareUnsigned(iova - starts[i], lengths[i] - length) <= 0) {
                    bitmap.fill((byte) 0);
                    long base = iova - starts[i];
                    long firstPage = base / pageSize;
                    long lastPage = (base + length - 1) / pageSize;
                    for (long page = firstPage; page <= lastPage; page++) {
                        if (isDirty(i, page)) {
                            long pageStart = Math.max(page * pageSize, base);
                            long pageEnd = Math.min((page + 1) * pageSize, base + length);
                            for (long bit = (pageStart - base) / reportPageSize; bit <= (pageEnd - 1 - base) / reportPageSize; bit++) {
                                long word = (bit >>> 6) << 3;
                                bitmap.set(dev.outproc.vfio.message.WireLayout.NATIVE_U64, word,
                                        bitmap.get(dev.outproc.vfio.message.WireLayout.NATIVE_U64, word) | (1L << (bit & 63)));
                            }
                        }
                    }
                    clear(i, firstPage, lastPage);
                    return;
                }
            }
            throw new VfioUserProtocolException(Errno.EINVAL, "DMA_LOGGING_REPORT range 0x" + Long.toHexString(iova) + "+0x"
                    + Long.toHexString(length) + " is not inside one logged range");
        }

        private void clear(int i, long firstPage, long lastPage) {
            MemorySegment words = logs[i].bitmap();
            for (long page = firstPage; page <= lastPage; page++) {
                // Device threads set bits concurrently with an atomic OR: clear with an atomic AND.
                WORD.getAndBitwiseAnd(words, (page >>> 6) << 3, ~(1L << (page & 63)));
                if (absolute != null) {
                    long p = starts[i] / pageSize + page;
                    WORD.getAndBitwiseAnd(absolute.bitmap(), (p >>> 6) << 3, ~(1L << (p & 63)));
                }
            }
        }
    }
}
