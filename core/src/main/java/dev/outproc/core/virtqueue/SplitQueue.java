package dev.outproc.core.virtqueue;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.Layouts;
import dev.outproc.core.memory.Unsigned;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtqueue.VirtqueueException.Reason;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;

/**
 * The device side of a split virtqueue (VIRTIO 1.x §2.7).
 *
 * <p>Ring layout (all little-endian):
 * <pre>
 * descriptor table  size x 16 bytes, 16-aligned   {le64 addr; le32 len; le16 flags; le16 next}
 * available ring    2-aligned   {le16 flags; le16 idx; le16 ring[size]; le16 used_event}
 * used ring         4-aligned   {le16 flags; le16 idx; {le32 id; le32 len} ring[size]; le16 avail_event}
 * </pre>
 * {@code avail.idx} is read with acquire semantics (it publishes the ring entries and descriptors
 * written before it); {@code used.idx} is written with release semantics (it publishes the used
 * elements). The queue size must be a power of two up to 32768.
 *
 * <p>Ids are head descriptor indices. {@link #resubmit(int[])} re-reads the given heads from the
 * descriptor table (the driver does not reuse a head before it is used, so the table still holds the
 * chain after a back-end restart). With VIRTIO_F_IN_ORDER chains must be completed in pop order
 * (an {@link IllegalStateException} otherwise); every used element is written.
 *
 * <p>Not thread-safe: one thread drives a queue. {@link #pop()}, {@link #stageUsed}, {@link #publishUsed()},
 * {@link #needsNotification()} and the notification toggles allocate nothing.
 */
public final class SplitQueue extends DeviceQueueBase {
    private static final long AVAIL_FLAGS = 0;
    private static final long AVAIL_IDX = 2;
    private static final long AVAIL_RING = 4;
    private static final long USED_FLAGS = 0;
    private static final long USED_IDX = 2;
    private static final long USED_RING = 4;
    private static final int USED_ELEM_SIZE = 8;

    private MemorySegment desc;
    private MemorySegment avail;
    private MemorySegment used;
    private int mask;
    private long usedEventOffset;
    private long availEventOffset;

    private int nextAvail;
    private int cachedAvailIdx;
    private int nextUsed;
    private int publishedUsed;
    private int staged;
    private int signalledUsed;
    private boolean signalledValid;

    /**
     * Creates an unconfigured queue.
     *
     * @param name name used in errors until {@link #configure} gives one
     */
    public SplitQueue(String name) {
        super(name);
    }

    @Override
    void checkSize(int size) throws VirtqueueException {
        if (size <= 0 || size > QueueConfig.MAX_SIZE || Integer.bitCount(size) != 1) {
            throw new VirtqueueException(Reason.QUEUE_SIZE_INVALID, name, -1,
                    "size=" + size + " (split rings need a power of two up to " + QueueConfig.MAX_SIZE + ")");
        }
    }

    @Override
    void resolveRings(GuestMemory memory) throws VirtqueueException {
        int event = eventIdx ? 2 : 0;
        desc = ring(config.descAddr(), (long) size * Rings.DESC_SIZE, 16, READS, "descriptor table");
        avail = ring(config.driverAddr(), AVAIL_RING + 2L * size + event, 2, READS, "available ring");
        used = ring(config.deviceAddr(), USED_RING + (long) USED_ELEM_SIZE * size + event, 4, WRITES, "used ring");
        mask = size - 1;
        usedEventOffset = AVAIL_RING + 2L * size;
        availEventOffset = USED_RING + (long) USED_ELEM_SIZE * size;
    }

    @Override
    void resetIndices() {
        nextAvail = 0;
        cachedAvailIdx = 0;
        nextUsed = 0;
        publishedUsed = 0;
        staged = 0;
        signalledUsed = 0;
        signalledValid = false;
    }

    @Override
    public DescriptorChain pop() throws VirtqueueException {
        checkUsable();
        try {
            int resubmitted = nextResubmitted();
            if (resubmitted >= 0) {
                DescriptorChain chain = chains[resubmitted];
                parse(chain, resubmitted);
                handOut(chain);
                return chain;
            }
            if (nextAvail == cachedAvailIdx) {
                // Acquire: the ring entries and descriptors the driver wrote before its release store of
                // avail.idx are visible once we see the new index (§2.7 "Supplying Buffers to The Device").
                int availIdx = (short) Rings.U16.getAcquire(avail, AVAIL_IDX) & 0xffff;
                int pending = (availIdx - nextAvail) & 0xffff;
                if (pending > size) {
                    throw fail(Reason.AVAIL_INDEX_JUMP, -1, "avail idx=" + availIdx + ", next avail=" + nextAvail
                            + ", size=" + size);
                }
                if (pending == 0) {
                    return null;
                }
                cachedAvailIdx = availIdx;
            }
            // Plain: ordered by the acquire load of avail.idx (the ring is 2-aligned, checked at configure).
            int head = avail.get(Layouts.LE_U16, AVAIL_RING + 2L * (nextAvail & mask)) & 0xffff;
            if (head >= size) {
                throw fail(Reason.DESCRIPTOR_INDEX_OUT_OF_RANGE, head, "avail ring entry " + (nextAvail & mask)
                        + ", size=" + size);
            }
            DescriptorChain chain = chains[head];
            if (chain.inFlight) {
                throw fail(Reason.DESCRIPTOR_IN_USE, head, "the head is already in flight");
            }
            parse(chain, head);
            nextAvail = (nextAvail + 1) & 0xffff;
            handOut(chain);
            return chain;
        } catch (IllegalStateException e) {
            throw unmapped(e);
        }
    }

    /** Walks a chain from {@code head}: at most {@code size} descriptors, so a loop ends (§2.7 "The Virtqueue Descriptor Table"). */
    private void parse(DescriptorChain chain, int head) throws VirtqueueException {
        chain.reset();
        chain.ringPosition = head;
        MemorySegment table = desc;
        int index = head;
        for (int n = 0; ; n++) {
            if (n >= size) {
                throw fail(Reason.DESCRIPTOR_LOOP, head, "chain longer than the queue size=" + size);
            }
            long at = (long) index * Rings.DESC_SIZE;
            // Plain reads: ordered by the acquire load of avail.idx in pop().
            // Two 64-bit reads: addr, then len | flags << 32 | next << 48 (little-endian).
            long address = table.get(Layouts.LE_U64, at + Rings.DESC_ADDR);
            long word = table.get(Layouts.LE_U64, at + Rings.DESC_LEN);
            int length = (int) word;
            int flags = (int) (word >>> 32) & 0xffff;
            chain.slots++;
            if ((flags & Rings.F_INDIRECT) != 0) {
                if ((flags & Rings.F_NEXT) != 0) {
                    throw fail(Reason.INDIRECT_WITH_NEXT, head, "descriptor " + index + ", flags=" + Unsigned.hex(flags));
                }
                appendIndirect(chain, head, address, length, false);
                return;
            }
            appendBuffer(chain, head, address, length, (flags & Rings.F_WRITE) != 0);
            if ((flags & Rings.F_NEXT) == 0) {
                return;
            }
            int next = (int) (word >>> 48);
            if (next >= size) {
                throw fail(Reason.DESCRIPTOR_INDEX_OUT_OF_RANGE, head, "descriptor " + index + " next=" + next
                        + ", size=" + size);
            }
            index = next;
        }
    }

    @Override
    public void stageUsed(DescriptorChain chain, long writtenBytes) throws VirtqueueException {
        checkUsable();
        complete(chain, writtenBytes);
        long at = USED_RING + (long) USED_ELEM_SIZE * (nextUsed & mask);
        try {
            // Plain stores: published by the release store of used.idx in publishUsed().
            used.set(Layouts.LE_U64, at, Integer.toUnsignedLong(chain.id) | writtenBytes << 32);
        } catch (IllegalStateException e) {
            throw unmapped(e);
        }
        logRingWrite(at, USED_ELEM_SIZE);
        nextUsed = (nextUsed + 1) & 0xffff;
        staged++;
    }

    @Override
    public void publishUsed() throws VirtqueueException {
        checkUsable();
        if (staged == 0) {
            return;
        }
        try {
            // Release: the used elements written in stageUsed() become visible no later than the index
            // that exposes them (§2.7 "The Virtqueue Used Ring": the device updates idx after writing the elements).
            Rings.U16.setRelease(used, USED_IDX, (short) nextUsed);
        } catch (IllegalStateException e) {
            throw unmapped(e);
        }
        logRingWrite(USED_IDX, 2);
        publishedUsed = nextUsed;
        staged = 0;
        observer.usedIndexPublished(publishedUsed, false);
    }

    @Override
    public boolean needsNotification() throws VirtqueueException {
        checkUsable();
        // Full fence (§2.7 "Used/Available Buffer Notification Suppression"): our used.idx store must be globally visible before we read the driver's
        // suppression field, or driver and device could each miss the other's update (a lost interrupt).
        VarHandle.fullFence();
        int old = signalledUsed;
        boolean valid = signalledValid;
        if (valid && old == publishedUsed) {
            return false;
        }
        signalledUsed = publishedUsed;
        signalledValid = true;
        try {
            if (eventIdx) {
                // Acquire: used_event is the driver's latest wish; read it after the fence, not earlier.
                int usedEvent = (short) Rings.U16.getAcquire(avail, usedEventOffset) & 0xffff;
                return !valid || Rings.needEvent(usedEvent, publishedUsed, old);
            }
            int flags = (short) Rings.U16.getAcquire(avail, AVAIL_FLAGS) & 0xffff;
            return (flags & Rings.AVAIL_F_NO_INTERRUPT) == 0;
        } catch (IllegalStateException e) {
            throw unmapped(e);
        }
    }

    @Override
    public boolean enableNotifications() throws VirtqueueException {
        checkUsable();
        kicksSuppressed = false;
        try {
            if (eventIdx) {
                // Release: a kick is wanted once the driver moves avail.idx past nextAvail (§2.7 "Used/Available Buffer Notification Suppression").
                Rings.U16.setRelease(used, availEventOffset, (short) nextAvail);
                logRingWrite(availEventOffset, 2);
            } else {
                Rings.U16.setRelease(used, USED_FLAGS, (short) 0);
                logRingWrite(USED_FLAGS, 2);
            }
            // Full fence: the store above must be visible before we re-read avail.idx; the driver does
            // the mirror image (publish idx, fence, read our flag), so one of us sees the other.
            VarHandle.fullFence();
            if (resubmitCount > 0) {
                return true;
            }
            int availIdx = (short) Rings.U16.getAcquire(avail, AVAIL_IDX) & 0xffff;
            return availIdx != nextAvail;
        } catch (IllegalStateException e) {
            throw unmapped(e);
        }
    }

    @Override
    public void disableNotifications() throws VirtqueueException {
        checkUsable();
        if (!eventIdx && !kicksSuppressed) {
            try {
                // Release: only a hint to the driver (§2.7 "Used/Available Buffer Notification Suppression"); ordering keeps it after earlier used writes.
                Rings.U16.setRelease(used, USED_FLAGS, (short) Rings.USED_F_NO_NOTIFY);
            } catch (IllegalStateException e) {
                throw unmapped(e);
            }
            logRingWrite(USED_FLAGS, 2);
            kicksSuppressed = true;
        }
        // With EVENT_IDX the driver kicks only when it passes avail_event, which we stop moving.
    }

    /**
     * {@return used.idx as the ring currently holds it} A back-end that resumes from vhost-user
     * {@code SET_VRING_BASE} (which carries only the avail index) takes the used index from here.
     *
     * @throws VirtqueueException when the ring is unmapped
     */
    public int ringUsedIndex() throws VirtqueueException {
        requireConfigured();
        try {
            return (short) Rings.U16.getAcquire(used, USED_IDX) & 0xffff;
        } catch (IllegalStateException e) {
            throw unmapped(e);
        }
    }

    @Override
    public QueueState exportState() {
        requireConfigured();
        return new QueueState(size, config.descAddr(), config.driverAddr(), config.deviceAddr(), nextAvail, nextUsed,
                false, false, eventIdx);
    }

    @Override
    public void importState(QueueConfig template, QueueState state, GuestMemory memory) throws VirtqueueException {
        long features = state.eventIdx() ? template.features() | VirtioFeature.EVENT_IDX.mask()
                : template.features() & ~VirtioFeature.EVENT_IDX.mask();
        configure(new QueueConfig(template.name(), state.size(), state.descAddr(), state.driverAddr(),
                state.deviceAddr(), features), memory);
        nextAvail = state.nextAvail();
        cachedAvailIdx = nextAvail;
        nextUsed = state.nextUsed();
        publishedUsed = nextUsed;
        signalledUsed = nextUsed;
    }

    /** {@return the next avail index the device will read (16-bit, free running)} */
    public int nextAvail() {
        return nextAvail;
    }

    /** {@return the next used index the device will write (16-bit, free running)} */
    public int nextUsed() {
        return nextUsed;
    }

    @Override
    public String toString() {
        return "SplitQueue[" + name + ", size=" + size + ", nextAvail=" + nextAvail + ", nextUsed=" + nextUsed
                + ", inFlight=" + inFlight + (broken ? ", broken" : "") + "]";
    }
}
