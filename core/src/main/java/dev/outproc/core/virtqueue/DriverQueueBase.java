package dev.outproc.core.virtqueue;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestMemoryException;
import dev.outproc.core.memory.Layouts;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/** What split and packed driver queues share: staging of buffers and the indirect table area. */
abstract sealed class DriverQueueBase implements DriverQueue permits SplitDriverQueue, PackedDriverQueue {
    final QueueConfig config;
    final int size;
    final boolean eventIdx;
    final int maxIndirect;
    final long indirectGpa;
    final MemorySegment indirectArea;
    long[] stagedAddresses = new long[8];
    int[] stagedLengths = new int[8];
    boolean[] stagedWritable = new boolean[8];
    int stagedCount;
    long stagedWritableBytes;
    final long[] writableBytes;
    final boolean[] posted;
    int inFlight;
    /** VIRTIO_F_IN_ORDER: ids in the order they were posted, oldest at {@link #orderHead}. */
    final boolean inOrder;
    final int[] postOrder;
    int orderHead;
    int orderCount;
    /** IN_ORDER: the id of a used entry that stands for a batch; older chains complete first. -1: none. */
    int skipTarget = -1;
    long skipLength;

    DriverQueueBase(QueueConfig config, GuestMemory memory, long indirectGpa, int maxIndirect) throws GuestMemoryException {
        this.config = config;
        this.size = config.size();
        this.eventIdx = config.eventIdx();
        this.maxIndirect = maxIndirect;
        this.indirectGpa = indirectGpa;
        this.indirectArea = maxIndirect > 0
                ? memory.slice(indirectGpa, (long) size * maxIndirect * Rings.DESC_SIZE) : MemorySegment.NULL;
        this.writableBytes = new long[size];
        this.posted = new boolean[size];
        this.inOrder = config.inOrder();
        this.postOrder = new int[inOrder ? size : 0];
    }

    static long indirectBytes(int size, int maxIndirect) {
        return (long) size * maxIndirect * Rings.DESC_SIZE;
    }

    @Override
    public QueueConfig config() {
        return config;
    }

    @Override
    public void add(long gpa, int length, boolean writable) {
        if (!writable && stagedCount > 0 && stagedWritable[stagedCount - 1]) {
            throw new IllegalArgumentException("device-readable buffer after a device-writable one in queue " + config.name());
        }
        if (stagedCount == stagedAddresses.length) {
            int n = stagedCount * 2;
            stagedAddresses = Arrays.copyOf(stagedAddresses, n);
            stagedLengths = Arrays.copyOf(stagedLengths, n);
            stagedWritable = Arrays.copyOf(stagedWritable, n);
        }
        stagedAddresses[stagedCount] = gpa;
        stagedLengths[stagedCount] = length;
        stagedWritable[stagedCount] = writable;
        stagedCount++;
        if (writable) {
            stagedWritableBytes += Integer.toUnsignedLong(length);
        }
    }

    @Override
    public void clearStaged() {
        stagedCount = 0;
        stagedWritableBytes = 0;
    }

    final void checkStaged(boolean indirect) {
        if (stagedCount == 0) {
            throw new IllegalArgumentException("no buffers staged for queue " + config.name());
        }
        if (indirect && stagedCount > maxIndirect) {
            throw new IllegalArgumentException("chain of " + stagedCount + " buffers exceeds the indirect table size "
                    + maxIndirect + " of queue " + config.name());
        }
        if (!indirect && stagedCount > size) {
            throw new IllegalArgumentException("chain of " + stagedCount + " buffers exceeds queue size " + size);
        }
    }

    /** Writes the staged buffers into the indirect table of {@code id}; returns the table's address. */
    final long writeIndirectTable(int id, boolean packed) {
        long base = (long) id * maxIndirect * Rings.DESC_SIZE;
        MemorySegment area = indirectArea;
        long[] addresses = stagedAddresses;
        int[] lengths = stagedLengths;
        boolean[] writable = stagedWritable;
        int n = stagedCount;
        for (int i = 0; i < n; i++) {
            long at = base + (long) i * Rings.DESC_SIZE;
            int flags = writable[i] ? Rings.F_WRITE : 0;
            long length = Integer.toUnsignedLong(lengths[i]);
            long word;
            if (packed) {
                // len | id (unused in a table) << 32 | flags << 48
                word = length | (long) flags << 48;
            } else {
                boolean more = i + 1 < n;
                // len | flags << 32 | next << 48
                word = length | (long) (flags | (more ? Rings.F_NEXT : 0)) << 32 | (more ? (long) (i + 1) << 48 : 0);
            }
            area.set(Layouts.LE_U64, at + Rings.DESC_ADDR, addresses[i]);
            area.set(Layouts.LE_U64, at + Rings.DESC_LEN, word);
        }
        return indirectGpa + base;
    }

    /** Validates a used entry from the device. */
    final void checkUsed(int id, long length) throws VirtqueueException {
        if (id < 0 || id >= size || !posted[id]) {
            throw new VirtqueueException(VirtqueueException.Reason.USED_ID_INVALID, config.name(), id,
                    "used id=" + Integer.toUnsignedString(id) + " is not in flight, size=" + size);
        }
        if (length > writableBytes[id]) {
            throw new VirtqueueException(VirtqueueException.Reason.USED_LENGTH_INVALID, config.name(), id,
                    "used len=" + length + ", writable bytes=" + writableBytes[id]);
        }
    }

    final void markPosted(int id) {
        posted[id] = true;
        writableBytes[id] = stagedWritableBytes;
        inFlight++;
        if (inOrder) {
            int tail = orderHead + orderCount;
            postOrder[tail >= size ? tail - size : tail] = id;
            orderCount++;
        }
        clearStaged();
    }

    /**
     * IN_ORDER (VIRTIO 1.x §2.7 and §2.8, "In-order use of descriptors"): a device may write one used entry
     * for a batch, carrying the id of the batch's last chain. Returns the id to complete now: the oldest
     * chain in flight. When that is not {@code usedId}, the entry stands for a batch and is remembered
     * in {@link #skipTarget}, so that the older chains complete first (with length 0) and {@code usedId}
     * last with the entry's length.
     */
    final int takeInOrder(int usedId, long length) {
        int oldest = postOrder[orderHead];
        orderHead = orderHead + 1 == size ? 0 : orderHead + 1;
        orderCount--;
        if (oldest != usedId) {
            skipTarget = usedId;
            skipLength = length;
        }
        return oldest;
    }

    /** IN_ORDER batch in progress: the next older chain, or the batch's last one. */
    final int takeSkipped() {
        int oldest = postOrder[orderHead];
        orderHead = orderHead + 1 == size ? 0 : orderHead + 1;
        orderCount--;
        return oldest;
    }

    /** The length to report for {@code id} while a batch entry is being expanded. */
    final long skippedLength(int id) {
        if (id == skipTarget) {
            skipTarget = -1;
            return skipLength;
        }
        return 0;
    }

    final long reaped(int id, long length) {
        posted[id] = false;
        inFlight--;
        return ((long) id << 32) | length;
    }

    @Override
    public int inFlightCount() {
        return inFlight;
    }
}
