package dev.outproc.core.virtqueue;

import dev.outproc.core.memory.DirtyLog;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.memory.Layouts;
import dev.outproc.core.memory.Unsigned;
import dev.outproc.core.virtqueue.VirtqueueException.Reason;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Comparator;

/** What split and packed device queues share: configuration, buffer validation, indirect tables, state. */
abstract sealed class DeviceQueueBase implements DeviceQueue permits SplitQueue, PackedQueue {
    final String defaultName;
    String name;
    QueueConfig config;
    GuestMemory memory = GuestMemory.empty();
    int size;
    boolean eventIdx;
    boolean indirect;
    boolean inOrder;
    boolean broken;
    /**
     * Whether the device's "no kick" flag (split: VRING_USED_F_NO_NOTIFY, packed: the disable flag) is
     * already in the ring: a polling device disables on every turn, and a store to the ring's shared
     * cache line each turn would make the driver's next read of it miss.
     */
    boolean kicksSuppressed;
    private boolean missesRecoverable;
    QueueObserver observer = QueueObserver.NONE;
    DirtyLog dirtyLog;
    long logGpa;
    DescriptorChain[] chains = new DescriptorChain[0];
    long nextSequence;
    int inFlight;
    /** IN_ORDER: the sequence number the next completion must carry. */
    long nextCompletion;
    int[] resubmitIds = new int[0];
    int resubmitNext;
    int resubmitCount;
    private int lastRegion;
    /** Per-region lookup data of {@link #memory}, rebuilt when the snapshot changes. */
    private long[] regionStart = new long[0];
    private long[] regionSize = new long[0];
    private MemorySegment[] regionSegments = new MemorySegment[0];
    /** Per region: {@link #READS} if the device may read it, {@link #WRITES} if it may write it. */
    private byte[] regionAccess = new byte[0];
    /** Access bit: the device reads (a readable buffer, an indirect table, the rings it reads). */
    static final int READS = 1;
    /** Access bit: the device writes (a writable buffer, the used ring, the device event area). */
    static final int WRITES = 2;

    DeviceQueueBase(String name) {
        this.defaultName = name;
        this.name = name;
    }

    @Override
    public QueueConfig config() {
        return config;
    }

    @Override
    public void configure(QueueConfig config, GuestMemory memory) throws VirtqueueException {
        this.name = config.name().isEmpty() ? defaultName : config.name();
        checkSize(config.size());
        this.config = config;
        this.size = config.size();
        this.eventIdx = config.eventIdx();
        this.indirect = config.indirectDesc();
        this.inOrder = config.inOrder();
        this.broken = false;
        this.kicksSuppressed = false;
        useMemory(memory);
        resolveRings(memory);
        if (chains.length != size) {
            chains = new DescriptorChain[size];
            for (int i = 0; i < size; i++) {
                chains[i] = new DescriptorChain(name, this, i);
            }
            resubmitIds = new int[size];
        } else {
            for (DescriptorChain c : chains) {
                c.inFlight = false;
            }
        }
        nextSequence = 0;
        nextCompletion = 0;
        inFlight = 0;
        resubmitNext = 0;
        resubmitCount = 0;
        lastRegion = 0;
        resetIndices();
    }

    abstract void checkSize(int size) throws VirtqueueException;

    private void useMemory(GuestMemory m) {
        this.memory = m;
        int n = m.regionCount();
        regionStart = new long[n];
        regionSize = new long[n];
        regionSegments = new MemorySegment[n];
        regionAccess = new byte[n];
        for (int i = 0; i < n; i++) {
            GuestRegion r = m.region(i);
            regionStart[i] = r.guestPhysAddr();
            regionSize[i] = r.sizeBytes();
            regionSegments[i] = r.segment();
            regionAccess[i] = (byte) ((r.readable() ? READS : 0) | (r.writable() ? WRITES : 0));
        }
        lastRegion = 0;
    }

    abstract void resolveRings(GuestMemory memory) throws VirtqueueException;

    abstract void resetIndices();

    @Override
    public void setMemory(GuestMemory memory) throws VirtqueueException {
        requireConfigured();
        useMemory(memory);
        try {
            resolveRings(memory);
        } catch (VirtqueueException e) {
            broken = true;
            throw e;
        }
    }

    @Override
    public void setDirtyLog(DirtyLog log, long usedRingLogGpa) {
        this.dirtyLog = log;
        this.logGpa = usedRingLogGpa;
    }

    /**
     * Marks ring bytes the device wrote in the dirty log, at the ring's log address; nothing while no log is
     * set or the ring's writes are not to be logged ({@link DeviceQueue#NO_RING_LOG}).
     *
     * @param offset where the write starts in the used ring (split) or descriptor ring (packed)
     * @param length bytes written
     */
    final void logRingWrite(long offset, long length) {
        if (dirtyLog != null && logGpa != NO_RING_LOG) {
            dirtyLog.mark(logGpa + offset, length);
        }
    }

    @Override
    public void setObserver(QueueObserver observer) {
        this.observer = observer == null ? QueueObserver.NONE : observer;
    }

    @Override
    public void markBroken() {
        broken = true;
    }

    @Override
    public boolean isBroken() {
        return broken;
    }

    @Override
    public int inFlightCount() {
        return inFlight;
    }

    @Override
    public int[] inFlightIds() {
        DescriptorChain[] inFlightChains = Arrays.stream(chains).filter(c -> c.inFlight)
                .sorted(Comparator.comparingLong(DescriptorChain::sequence)).toArray(DescriptorChain[]::new);
        int[] ids = new int[inFlightChains.length];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = inFlightChains[i].id;
        }
        return ids;
    }

    @Override
    public void resubmit(int[] ids) throws VirtqueueException {
        requireConfigured();
        if (ids.length > size - resubmitCount) {
            throw new IllegalArgumentException("more ids to resubmit than the queue holds, ids=" + ids.length + ", size=" + size);
        }
        for (int id : ids) {
            if (id < 0 || id >= size) {
                throw new VirtqueueException(Reason.DESCRIPTOR_INDEX_OUT_OF_RANGE, name, id, "resubmitted id, size=" + size);
            }
        }
        // Compact the pending list, then append.
        System.arraycopy(resubmitIds, resubmitNext, resubmitIds, 0, resubmitCount);
        resubmitNext = 0;
        System.arraycopy(ids, 0, resubmitIds, resubmitCount, ids.length);
        resubmitCount += ids.length;
    }

    final void requireConfigured() {
        if (config == null) {
            throw new IllegalStateException("virtqueue " + name + " is not configured");
        }
    }

    final void checkUsable() throws VirtqueueException {
        if (broken) {
            throw new VirtqueueException(Reason.BROKEN, name, -1, "the queue needs a reset");
        }
        requireConfigured();
    }

    /** Marks the queue broken and builds the error to throw. */
    final VirtqueueException fail(Reason reason, int head, String details) {
        broken = true;
        return new VirtqueueException(reason, name, head, details);
    }

    /**
     * A buffer address outside memory: fatal, unless misses are recoverable (an IOTLB will be asked),
     * in which case nothing has moved and the same chain is popped again once the memory changes.
     */
    final VirtqueueException miss(int head, long address, String details) {
        if (!missesRecoverable) {
            broken = true;
        }
        return new VirtqueueException(Reason.BUFFER_OUTSIDE_MEMORY, name, head, address, details);
    }

    @Override
    public void setMissesRecoverable(boolean recoverable) {
        this.missesRecoverable = recoverable;
    }

    final VirtqueueException unmapped(IllegalStateException e) {
        VirtqueueException x = fail(Reason.MEMORY_UNMAPPED, -1, "cause=" + e.getMessage());
        x.initCause(e);
        return x;
    }

    /**
     * Resolves one ring area, checking alignment, that one region holds all of it and that the region allows
     * the device's access to it ({@link #READS}, {@link #WRITES} or both: an IOTLB entry may be read-only or
     * write-only).
     */
    final MemorySegment ring(long gpa, long length, int alignment, int access, String what) throws VirtqueueException {
        if ((gpa & (alignment - 1)) != 0) {
            throw fail(Reason.RING_MISALIGNED, -1, what + "=" + Unsigned.hex(gpa) + ", required alignment=" + alignment);
        }
        int index = memory.regionIndexOfGpa(gpa, length);
        if (index < 0) {
            throw fail(Reason.RING_OUTSIDE_MEMORY, -1, what + "=" + Unsigned.hex(gpa) + ", length=" + length);
        }
        if ((regionAccess[index] & access) != access) {
            throw fail(Reason.RING_OUTSIDE_MEMORY, -1, what + "=" + Unsigned.hex(gpa) + ", length=" + length
                    + ": the device " + accessText(access) + " it, but its mapping is " + accessText(regionAccess[index])
                    + " (" + memory.region(index) + ")");
        }
        GuestRegion r = memory.region(index);
        MemorySegment segment = r.segment().asSlice(gpa - r.guestPhysAddr(), length);
        if (segment.address() % alignment != 0) {
            // The mapping itself is page aligned, so this only happens with an odd mmap offset.
            throw fail(Reason.RING_MISALIGNED, -1, what + " host address=" + Unsigned.hex(segment.address()));
        }
        return segment;
    }

    /**
     * Validates one guest buffer and appends it: buffer count, address overflow, memory bounds, direction
     * order, total length (VIRTIO 1.x §2.7 "Message Framing", §2.7 "The Virtqueue Descriptor Table").
     *
     * <p>A zero-length descriptor is accepted: VIRTIO 1.3 does not forbid it, rust-vmm's virtio-queue
     * accepts it, and Linux's virtio-net has sent one (an RSS command without a key) that QEMU's refusal
     * ("zero sized buffers are not allowed") turned into a wedged guest. It holds no guest bytes and
     * counts against {@link Rings#MAX_CHAIN_BUFFERS}, so it cannot pin more heap than any other buffer.
     */
    final void appendBuffer(DescriptorChain chain, int head, long address, int length, boolean writable)
            throws VirtqueueException {
        long unsignedLength = Integer.toUnsignedLong(length);
        // One compact test on the hot path (a range inside a region cannot wrap); the cold path names the rule.
        int index = regionOf(address, unsignedLength);
        if (index < 0 || (regionAccess[index] & (writable ? WRITES : READS)) == 0
                || chain.count >= Rings.MAX_CHAIN_BUFFERS || (!writable && chain.count > chain.readable)
                || chain.totalReadable + chain.totalWritable + unsignedLength > Rings.MAX_CHAIN_BYTES) {
            throw bufferError(chain, head, address, unsignedLength, writable);
        }
        if (chain.segments != regionSegments) {
            chain.segments = regionSegments;
        }
        chain.append(address, length, writable, index, address - regionStart[index]);
    }

    private VirtqueueException bufferError(DescriptorChain chain, int head, long address, long length, boolean writable) {
        if (chain.count >= Rings.MAX_CHAIN_BUFFERS) {
            return fail(Reason.CHAIN_TOO_LONG, head, "buffers > " + Rings.MAX_CHAIN_BUFFERS);
        }
        if (!writable && chain.count > chain.readable) {
            return fail(Reason.WRITE_THEN_READ, head, "readable descriptor " + chain.count + " after "
                    + (chain.count - chain.readable) + " writable, addr=" + Unsigned.hex(address) + ", len=" + length);
        }
        if (Unsigned.wraps(address, length)) {
            return fail(Reason.ADDRESS_OVERFLOW, head, "addr=" + Unsigned.hex(address) + ", len=" + length);
        }
        long total = chain.totalReadable + chain.totalWritable + length;
        if (total > Rings.MAX_CHAIN_BYTES) {
            return fail(Reason.CHAIN_TOO_LARGE, head, "total bytes=" + total + ", limit=" + Rings.MAX_CHAIN_BYTES);
        }
        int index = memory.regionIndexOfGpa(address, length);
        if (index >= 0) {
            // Mapped, but not for this direction: not a miss to ask an IOTLB about, the driver's error.
            return fail(Reason.BUFFER_OUTSIDE_MEMORY, head, "addr=" + Unsigned.hex(address) + ", len=" + length + ": a device-"
                    + (writable ? "writable" : "readable") + " buffer in a " + accessText(regionAccess[index]) + " mapping ("
                    + memory.region(index) + ")");
        }
        return miss(head, address, "addr=" + Unsigned.hex(address) + ", len=" + length
                + " (outside guest memory or across a region boundary)");
    }

    private static String accessText(int access) {
        return switch (access & (READS | WRITES)) {
            case READS -> "read-only";
            case WRITES -> "write-only";
            case READS | WRITES -> "read-write";
            default -> "inaccessible";
        };
    }

    /** The region holding the whole range, or -1; most ranges of a run hit the same region as the last one. */
    private int regionOf(long address, long length) {
        int index = lastRegion;
        if (index < regionStart.length && Unsigned.within(address, length, regionStart[index], regionSize[index])) {
            return index;
        }
        index = memory.regionIndexOfGpa(address, length);
        if (index >= 0) {
            lastRegion = index;
        }
        return index;
    }

    /**
     * Appends the buffers of an indirect table (§2.7 "Indirect Descriptors", §2.8 "Indirect Flag: Scatter-Gather Support"). Split tables chain with NEXT inside the
     * table; packed tables are read in order. Nested indirect is refused; at most the table's entry count
     * of descriptors are followed, so a loop ends.
     */
    final void appendIndirect(DescriptorChain chain, int head, long tableAddress, int tableLength, boolean packed)
            throws VirtqueueException {
        long bytes = Integer.toUnsignedLong(tableLength);
        int index;
        if (!indirect || bytes == 0 || bytes % Rings.DESC_SIZE != 0 || bytes > Rings.MAX_CHAIN_BUFFERS * (long) Rings.DESC_SIZE
                || (index = regionOf(tableAddress, bytes)) < 0 || (regionAccess[index] & READS) == 0) {
            throw indirectTableError(head, tableAddress, bytes);
        }
        long entries = bytes / Rings.DESC_SIZE;
        MemorySegment segment = regionSegments[index];
        long base = tableAddress - regionStart[index];
        int i = 0;
        for (int n = 0; ; n++) {
            if (n >= entries) {
                throw fail(Reason.DESCRIPTOR_LOOP, head, "indirect chain longer than its table, entries=" + entries);
            }
            long at = base + (long) i * Rings.DESC_SIZE;
            // Plain reads: the driver wrote the table before publishing the head that points to it.
            long address = segment.get(Layouts.LE_U64, at + Rings.DESC_ADDR);
            long word = segment.get(Layouts.LE_U64, at + Rings.DESC_LEN);
            // Split: len | flags << 32 | next << 48; packed: len | id << 32 | flags << 48.
            int flags = (int) (word >>> (packed ? 48 : 32)) & 0xffff;
            if ((flags & Rings.F_INDIRECT) != 0) {
                throw fail(Reason.NESTED_INDIRECT, head, "indirect table entry " + i + ", flags=" + Unsigned.hex(flags));
            }
            appendBuffer(chain, head, address, (int) word, (flags & Rings.F_WRITE) != 0);
            if (packed) {
                // §2.8 "Indirect Flag: Scatter-Gather Support": a packed indirect table is a sequence; NEXT is not used inside it.
                if (n + 1 == entries) {
                    return;
                }
                i++;
            } else {
                if ((flags & Rings.F_NEXT) == 0) {
                    return;
                }
                i = (int) (word >>> 48);
                if (i >= entries) {
                    throw fail(Reason.DESCRIPTOR_INDEX_OUT_OF_RANGE, head, "indirect next=" + i + ", entries=" + entries);
                }
            }
        }
    }

    private VirtqueueException indirectTableError(int head, long tableAddress, long bytes) {
        if (!indirect) {
            return fail(Reason.INDIRECT_NOT_NEGOTIATED, head, "table addr=" + Unsigned.hex(tableAddress));
        }
        if (bytes == 0) {
            return fail(Reason.INDIRECT_TABLE_EMPTY, head, "table addr=" + Unsigned.hex(tableAddress));
        }
        if (bytes % Rings.DESC_SIZE != 0) {
            return fail(Reason.INDIRECT_TABLE_MISALIGNED, head, "table len=" + bytes + " (not a multiple of 16)");
        }
        if (bytes / Rings.DESC_SIZE > Rings.MAX_CHAIN_BUFFERS) {
            return fail(Reason.INDIRECT_TABLE_TOO_LONG, head, "entries=" + bytes / Rings.DESC_SIZE + ", limit="
                    + Rings.MAX_CHAIN_BUFFERS);
        }
        if (Unsigned.wraps(tableAddress, bytes)) {
            return fail(Reason.ADDRESS_OVERFLOW, head, "table addr=" + Unsigned.hex(tableAddress) + ", len=" + bytes);
        }
        int index = memory.regionIndexOfGpa(tableAddress, bytes);
        if (index >= 0) {
            return fail(Reason.BUFFER_OUTSIDE_MEMORY, head, "indirect table addr=" + Unsigned.hex(tableAddress) + ", len=" + bytes
                    + ": the device reads it, but its mapping is " + accessText(regionAccess[index]) + " (" + memory.region(index) + ")");
        }
        return miss(head, tableAddress, "indirect table addr=" + Unsigned.hex(tableAddress) + ", len=" + bytes);
    }

    /** Common bookkeeping when a chain is handed out. */
    final void handOut(DescriptorChain chain) {
        if (!chain.inFlight) {
            inFlight++;
        }
        chain.inFlight = true;
        chain.sequence = nextSequence++;
        observer.chainPopped(chain.id);
    }

    /** Common checks and bookkeeping when a chain completes; returns the length as an int for the ring. */
    final void complete(DescriptorChain chain, long writtenBytes) {
        if (!chain.ownedBy(this) || !chain.inFlight) {
            throw new IllegalArgumentException("chain " + chain.id + " is not in flight on queue " + name);
        }
        if (writtenBytes < 0 || writtenBytes > chain.totalWritable) {
            throw new IllegalArgumentException("written bytes out of range for chain " + chain.id + " on queue " + name
                    + ", writtenBytes=" + writtenBytes + ", writable=" + chain.totalWritable);
        }
        if (inOrder) {
            if (chain.sequence != nextCompletion) {
                throw new IllegalStateException("VIRTIO_F_IN_ORDER: chain " + chain.id + " on queue " + name
                        + " completed out of order, sequence=" + chain.sequence + ", expected=" + nextCompletion);
            }
            nextCompletion++;
        }
        if (dirtyLog != null) {
            chain.markWritten(dirtyLog, writtenBytes);
        }
        chain.inFlight = false;
        chain.releaseOversized();
        inFlight--;
        observer.chainCompleted(chain.id, writtenBytes);
    }

    /** Takes the next resubmitted id, or -1. */
    final int nextResubmitted() {
        if (resubmitCount == 0) {
            return -1;
        }
        resubmitCount--;
        return resubmitIds[resubmitNext++];
    }
}
