package dev.outproc.vhost.backend;

import dev.outproc.core.fd.NativeException;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.MemFd;
import dev.outproc.core.memory.SharedMapping;
import dev.outproc.core.virtqueue.QueueObserver;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * The shared-memory inflight log of {@code VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD} (vhost-user.rst,
 * "Inflight I/O tracking"): one region per queue that records which descriptors the back-end took and
 * has not completed, so that a restarted back-end resubmits them.
 *
 * <p>Split layout of one queue region (native byte order, aligned to 64 bytes per queue):
 * <pre>
 *   0                   8        10        12               14        16
 *   +-------------------+--------+---------+----------------+---------+----------------------+
 *   | u64 features      | u16    | u16     | u16            | u16     | DescStateSplit       |
 *   |                   | version| desc_num| last_batch_head| used_idx| desc[desc_num] ...   |
 *   +-------------------+--------+---------+----------------+---------+----------------------+
 *   DescStateSplit (16 bytes): u8 inflight, u8 padding[5], u16 next, u64 counter
 * </pre>
 * Packed rings use the spec's packed header (32 bytes) and {@code DescStatePacked} (32 bytes); this
 * log records {@code inflight}, {@code counter} and {@code id} of each buffer id, which is what
 * resubmission needs.
 *
 * <p>Ordering: a descriptor is marked in flight when popped and cleared only after its used entry is
 * published; {@code last_batch_head} names the chain whose publication may have been cut off by a crash,
 * and {@link #recoverSplit} settles it by comparing {@code used_idx} with the ring's own used index.
 */
public final class InflightRegion implements AutoCloseable {
    /** The version this log writes. */
    public static final int VERSION = 1;
    private static final ValueLayout.OfLong NATIVE_U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.nativeOrder());
    private static final ValueLayout.OfShort NATIVE_U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.nativeOrder());
    private static final long SPLIT_HEADER = 16;
    private static final long SPLIT_DESC = 16;
    private static final long PACKED_HEADER = 32;
    private static final long PACKED_DESC = 32;
    /** Header fields of both layouts. */
    private static final long FEATURES_OFFSET = 0;
    private static final long VERSION_OFFSET = 8;
    private static final long DESC_NUM_OFFSET = 10;
    /** Split header: the head of the last batch, and the used index the log last saw published. */
    private static final long SPLIT_LAST_BATCH_HEAD_OFFSET = 12;
    private static final long SPLIT_USED_IDX_OFFSET = 14;
    /** Packed header (after free_head and old_free_head): used_idx and used_wrap_counter. */
    private static final long PACKED_USED_IDX_OFFSET = 16;
    private static final long PACKED_USED_WRAP_OFFSET = 20;
    /** Descriptor state of both layouts: the inflight byte first, the counter at 8. */
    private static final long DESC_INFLIGHT_OFFSET = 0;
    private static final long DESC_COUNTER_OFFSET = 8;
    /** {@code DescStatePacked.id}. */
    private static final long PACKED_DESC_ID_OFFSET = 16;

    private final SharedMapping mapping;
    private final OwnedFd fd;
    private final int queueCount;
    private final int queueSize;
    private final boolean packed;
    private final long queueRegionBytes;

    private InflightRegion(SharedMapping mapping, OwnedFd fd, int queueCount, int queueSize, boolean packed) {
        this.mapping = mapping;
        this.fd = fd;
        this.queueCount = queueCount;
        this.queueSize = queueSize;
        this.packed = packed;
        this.queueRegionBytes = queueRegionBytes(queueSize, packed);
    }

    /**
     * {@return the bytes one queue's region takes, rounded up to 64}
     *
     * @param queueSize descriptors per queue
     * @param packed packed layout
     */
    public static long queueRegionBytes(int queueSize, boolean packed) {
        long raw = packed ? PACKED_HEADER + PACKED_DESC * queueSize : SPLIT_HEADER + SPLIT_DESC * queueSize;
        return (raw + 63) & ~63L;
    }

    /**
     * Creates a fresh, zeroed log in a new memfd (GET_INFLIGHT_FD), with version and sizes set.
     *
     * @param queueCount number of queues
     * @param queueSize descriptors per queue
     * @param packed packed layout
     * @return the log, which keeps the fd (to return it to the front-end)
     * @throws NativeException when memfd or mmap fails
     */
    public static InflightRegion create(int queueCount, int queueSize, boolean packed) throws NativeException {
        long bytes = queueRegionBytes(queueSize, packed) * queueCount;
        OwnedFd fd = MemFd.create("outproc-inflight", bytes);
        try {
            SharedMapping mapping = SharedMapping.map(fd.get(), 0, bytes, true);
            InflightRegion region = new InflightRegion(mapping, fd, queueCount, queueSize, packed);
            for (int q = 0; q < queueCount; q++) {
                MemorySegment s = region.queueSegment(q);
                s.set(NATIVE_U16, VERSION_OFFSET, (short) VERSION);
                s.set(NATIVE_U16, DESC_NUM_OFFSET, (short) queueSize);
            }
            return region;
        } catch (NativeException | RuntimeException e) {
            fd.close();
            throw e;
        }
    }

    /**
     * Maps a log the front-end hands back (SET_INFLIGHT_FD), possibly written by an earlier back-end.
     *
     * @param fd the memfd (ownership stays with the caller)
     * @param mmapSize the size announced
     * @param mmapOffset the offset announced
     * @param queueCount number of queues
     * @param queueSize descriptors per queue
     * @param packed packed layout
     * @return the log
     * @throws NativeException when mmap fails
     * @throws IllegalArgumentException when the size does not hold the queues
     */
    public static InflightRegion map(OwnedFd fd, long mmapSize, long mmapOffset, int queueCount, int queueSize,
                                     boolean packed) throws NativeException {
        long needed = queueRegionBytes(queueSize, packed) * queueCount;
        if (queueCount <= 0 || queueSize <= 0 || mmapSize < needed) {
            throw new IllegalArgumentException("inflight region too small: mmap_size=" + mmapSize + ", needed=" + needed
                    + " for " + queueCount + " queues of " + queueSize);
        }
        SharedMapping mapping = SharedMapping.map(fd.get(), mmapOffset, needed, true);
        return new InflightRegion(mapping, null, queueCount, queueSize, packed);
    }

    /** {@return the log's size in bytes} */
    public long sizeBytes() {
        return queueRegionBytes * queueCount;
    }

    /** {@return the fd of a log this back-end created, or {@code null}} */
    public OwnedFd fd() {
        return fd;
    }

    /** {@return the number of queues} */
    public int queueCount() {
        return queueCount;
    }

    /** {@return descriptors per queue} */
    public int queueSize() {
        return queueSize;
    }

    /** {@return whether the log uses the packed layout} */
    public boolean isPacked() {
        return packed;
    }

    private MemorySegment queueSegment(int queue) {
        return mapping.segment().asSlice(queue * queueRegionBytes, queueRegionBytes);
    }

    /**
     * {@return whether a queue's region holds a log of this layout (version 1 and the right size)}
     *
     * @param queue the queue
     */
    public boolean isValid(int queue) {
        MemorySegment s = queueSegment(queue);
        return s.get(NATIVE_U16, VERSION_OFFSET) == VERSION
                && Short.toUnsignedInt(s.get(NATIVE_U16, DESC_NUM_OFFSET)) == queueSize;
    }

    /**
     * Prepares a queue's region for use: a region that is not valid is cleared and initialized.
     *
     * @param queue the queue
     * @param features the negotiated features, recorded in the header
     */
    public void prepare(int queue, long features) {
        MemorySegment s = queueSegment(queue);
        if (!isValid(queue)) {
            s.fill((byte) 0);
            s.set(NATIVE_U16, VERSION_OFFSET, (short) VERSION);
            s.set(NATIVE_U16, DESC_NUM_OFFSET, (short) queueSize);
        }
        s.set(NATIVE_U64, FEATURES_OFFSET, features);
    }

    /** What {@link #recoverSplit} found. */
    public record Recovery(int nextAvail, int nextUsed, int[] resubmit, long lastCounter) {
    }

    /**
     * Settles a split queue's log against the ring after a restart: if the ring's used index moved past
     * the logged one, the last batch was published and its head is no longer in flight. Every descriptor
     * still in flight is returned for resubmission, oldest first.
     *
     * @param queue the queue
     * @param ringUsedIdx the used index read from the guest's used ring
     * @return the indices to resume from and the heads to resubmit
     */
    public Recovery recoverSplit(int queue, int ringUsedIdx) {
        MemorySegment s = queueSegment(queue);
        int loggedUsed = Short.toUnsignedInt(s.get(NATIVE_U16, SPLIT_USED_IDX_OFFSET));
        if (loggedUsed != ringUsedIdx) {
            int lastBatchHead = Short.toUnsignedInt(s.get(NATIVE_U16, SPLIT_LAST_BATCH_HEAD_OFFSET));
            if (lastBatchHead < queueSize) {
                s.set(ValueLayout.JAVA_BYTE, SPLIT_HEADER + SPLIT_DESC * lastBatchHead + DESC_INFLIGHT_OFFSET, (byte) 0);
            }
            s.set(NATIVE_U16, SPLIT_USED_IDX_OFFSET, (short) ringUsedIdx);
        }
        int[] pending = inFlight(s, SPLIT_HEADER, SPLIT_DESC);
        long lastCounter = maxCounter(s, SPLIT_HEADER, SPLIT_DESC);
        return new Recovery((ringUsedIdx + pending.length) & 0xffff, ringUsedIdx, pending, lastCounter);
    }

    /**
     * {@return the buffer ids in flight in a packed queue's log, oldest first}
     *
     * @param queue the queue
     */
    public int[] inFlightPacked(int queue) {
        return inFlight(queueSegment(queue), PACKED_HEADER, PACKED_DESC);
    }

    private int[] inFlight(MemorySegment s, long header, long stride) {
        int count = 0;
        long[] keyed = new long[queueSize];
        for (int i = 0; i < queueSize; i++) {
            long base = header + stride * i;
            if (s.get(ValueLayout.JAVA_BYTE, base + DESC_INFLIGHT_OFFSET) != 0) {
                long counter = s.get(NATIVE_U64, base + DESC_COUNTER_OFFSET);
                // Sort by counter, then index: pack them into one long (counters stay far below 2^47).
                keyed[count++] = (counter << 16) | i;
            }
        }
        long[] sorted = Arrays.copyOf(keyed, count);
        Arrays.sort(sorted);
        int[] ids = new int[count];
        for (int i = 0; i < count; i++) {
            ids[i] = (int) (sorted[i] & 0xffff);
        }
        return ids;
    }

    private long maxCounter(MemorySegment s, long header, long stride) {
        long max = 0;
        for (int i = 0; i < queueSize; i++) {
            max = Math.max(max, s.get(NATIVE_U64, header + stride * i + DESC_COUNTER_OFFSET));
        }
        return max;
    }

    /**
     * {@return an observer that keeps a queue's region up to date; allocation-free}
     *
     * @param queue the queue
     * @param firstCounter the counter to continue from (from {@link Recovery#lastCounter()}, or 0)
     */
    public QueueObserver tracker(int queue, long firstCounter) {
        return packed ? new PackedTracker(queueSegment(queue), firstCounter) : new SplitTracker(queueSegment(queue), firstCounter);
    }

    private final class SplitTracker implements QueueObserver {
        private final MemorySegment s;
        private final int[] batch = new int[queueSize];
        private int batchCount;
        private long counter;

        SplitTracker(MemorySegment s, long firstCounter) {
            this.s = s;
            this.counter = firstCounter;
        }

        @Override
        public void chainPopped(int id) {
            long base = SPLIT_HEADER + SPLIT_DESC * id;
            s.set(NATIVE_U64, base + DESC_COUNTER_OFFSET, ++counter);
            // The counter is in place before the flag says the descriptor is in flight.
            java.lang.invoke.VarHandle.releaseFence();
            s.set(ValueLayout.JAVA_BYTE, base + DESC_INFLIGHT_OFFSET, (byte) 1);
        }

        @Override
        public void chainCompleted(int id, long writtenBytes) {
            // Written before the used entry becomes visible: a crash after publication finds it here.
            s.set(NATIVE_U16, SPLIT_LAST_BATCH_HEAD_OFFSET, (short) id);
            if (batchCount < batch.length) {
                batch[batchCount++] = id;
            }
        }

        @Override
        public void usedIndexPublished(int nextUsed, boolean usedWrapCounter) {
            for (int i = 0; i < batchCount; i++) {
                s.set(ValueLayout.JAVA_BYTE, SPLIT_HEADER + SPLIT_DESC * batch[i] + DESC_INFLIGHT_OFFSET, (byte) 0);
            }
            batchCount = 0;
            java.lang.invoke.VarHandle.releaseFence();
            s.set(NATIVE_U16, SPLIT_USED_IDX_OFFSET, (short) nextUsed);
        }
    }

    private final class PackedTracker implements QueueObserver {
        private final MemorySegment s;
        private final int[] batch = new int[queueSize];
        private int batchCount;
        private long counter;

        PackedTracker(MemorySegment s, long firstCounter) {
            this.s = s;
            this.counter = firstCounter;
        }

        @Override
        public void chainPopped(int id) {
            if (id >= queueSize) {
                return;
            }
            long base = PACKED_HEADER + PACKED_DESC * id;
            s.set(NATIVE_U64, base + DESC_COUNTER_OFFSET, ++counter);
            s.set(NATIVE_U16, base + PACKED_DESC_ID_OFFSET, (short) id);
            java.lang.invoke.VarHandle.releaseFence();
            s.set(ValueLayout.JAVA_BYTE, base + DESC_INFLIGHT_OFFSET, (byte) 1);
        }

        @Override
        public void chainCompleted(int id, long writtenBytes) {
            if (id < queueSize && batchCount < batch.length) {
                batch[batchCount++] = id;
            }
        }

        @Override
        public void usedIndexPublished(int nextUsed, boolean usedWrapCounter) {
            for (int i = 0; i < batchCount; i++) {
                s.set(ValueLayout.JAVA_BYTE, PACKED_HEADER + PACKED_DESC * batch[i] + DESC_INFLIGHT_OFFSET, (byte) 0);
            }
            batchCount = 0;
            java.lang.invoke.VarHandle.releaseFence();
            s.set(NATIVE_U16, PACKED_USED_IDX_OFFSET, (short) nextUsed);
            s.set(ValueLayout.JAVA_BYTE, PACKED_USED_WRAP_OFFSET, (byte) (usedWrapCounter ? 1 : 0));
        }
    }

    /** Unmaps the log and closes its fd if it has one. */
    @Override
    public void close() {
        mapping.close();
        if (fd != null) {
            fd.close();
        }
    }
}
