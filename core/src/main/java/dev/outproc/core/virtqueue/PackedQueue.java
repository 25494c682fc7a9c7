package dev.outproc.core.virtqueue;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.Layouts;
import dev.outproc.core.memory.Unsigned;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtqueue.VirtqueueException.Reason;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;

/**
 * The device side of a packed virtqueue (VIRTIO 1.x §2.8).
 *
 * <p>Ring layout (all little-endian):
 * <pre>
 * descriptor ring      size x 16 bytes, 16-aligned  {le64 addr; le32 len; le16 id; le16 flags}
 * driver event area    4-aligned  {le16 off_wrap; le16 flags}  written by the driver, read here
 * device event area    4-aligned  {le16 off_wrap; le16 flags}  written here, read by the driver
 * </pre>
 * A descriptor is available when its AVAIL bit equals the device's avail wrap counter and its USED bit
 * differs (§2.8 "Driver and Device Ring Wrap Counters"); its flags are read with acquire semantics because the driver stores the head's
 * flags last, with release. A chain is consecutive descriptors linked by NEXT; the buffer id is taken from
 * the last one. Used descriptors are written at the device's used position (id, len, then flags with
 * release); in a batch the first one's flags are written last so the driver sees the batch at once.
 * Any size from 1 to 32768 is accepted.
 *
 * <p>Ids are buffer ids. {@link #resubmit(int[])} re-delivers chains this object still holds in flight
 * (a back-end that reconnects without losing its queue objects); it cannot rebuild chains in a new
 * process, because the ring slots of an in-flight chain may already hold used descriptors of others.
 * With VIRTIO_F_IN_ORDER chains must be completed in pop order; every used descriptor is written.
 *
 * <p>The dirty log ({@link #setDirtyLog}) logs used descriptors at the descriptor ring's log address; the
 * device event area is not logged (a destination device rewrites it when it enables notifications).
 *
 * <p>Not thread-safe: one thread drives a queue. The data path allocates nothing.
 */
public final class PackedQueue extends DeviceQueueBase {
    private static final long EVENT_OFF_WRAP = 0;
    private static final long EVENT_FLAGS = 2;
    private static final int EVENT_AREA_SIZE = 4;

    private MemorySegment desc;
    private MemorySegment driverEvent;
    private MemorySegment deviceEvent;

    private int nextAvail;
    private boolean availWrap;
    private int nextUsed;
    private boolean usedWrap;
    private int staged;
    private int deferredSlot;
    private int deferredFlags;
    private int publishedUsed;
    private boolean publishedWrap;
    private int stagedSlots;
    private int slotsSinceSignal;
    private int signalledUsed;
    private boolean signalledValid;

    /**
     * Creates an unconfigured queue.
     *
     * @param name name used in errors until {@link #configure} gives one
     */
    public PackedQueue(String name) {
        super(name);
    }

    @Override
    void checkSize(int size) throws VirtqueueException {
        if (size <= 0 || size > QueueConfig.MAX_SIZE) {
            throw new VirtqueueException(Reason.QUEUE_SIZE_INVALID, name, -1,
                    "size=" + size + " (packed rings allow 1.." + QueueConfig.MAX_SIZE + ")");
        }
    }

    @Override
    void resolveRings(GuestMemory memory) throws VirtqueueException {
        desc = ring(config.descAddr(), (long) size * Rings.DESC_SIZE, 16, READS | WRITES, "descriptor ring");
        driverEvent = ring(config.driverAddr(), EVENT_AREA_SIZE, 4, READS, "driver event area");
        deviceEvent = ring(config.deviceAddr(), EVENT_AREA_SIZE, 4, WRITES, "device event area");
    }

    @Override
    void resetIndices() {
        nextAvail = 0;
        availWrap = true;
        nextUsed = 0;
        usedWrap = true;
        staged = 0;
        stagedSlots = 0;
        publishedUsed = 0;
        publishedWrap = true;
        slotsSinceSignal = 0;
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
                if (!chain.inFlight) {
                    throw new VirtqueueException(Reason.BUFFER_ID_OUT_OF_RANGE, name, resubmitted,
                            "resubmitted buffer id is not in flight on this queue object");
                }
                handOut(chain);
                return chain;
            }
            int head = nextAvail;
            long at = (long) head * Rings.DESC_SIZE;
            // Acquire: the driver writes every descriptor of the chain, then the head's flags with
            // release (§2.8 "Supplying Buffers to The Device": "the driver ... makes the first descriptor available last").
            int flags = (short) Rings.U16.getAcquire(desc, at + Rings.PACKED_DESC_FLAGS) & 0xffff;
            if (!Rings.isAvailable(flags, availWrap)) {
                return null;
            }
            // First pass: find the last descriptor (it carries the buffer id) and the chain's slot count,
            // so the chain is parsed straight into the id's reusable object.
            int slot = head;
            int slots = 1;
            int lastFlags = flags;
            while ((lastFlags & Rings.F_NEXT) != 0) {
                if (slots >= size) {
                    throw fail(Reason.DESCRIPTOR_LOOP, head, "chain longer than the ring, size=" + size);
                }
                slot = slot + 1 == size ? 0 : slot + 1;
                // Plain: ordered by the acquire load of the head's flags.
                lastFlags = desc.get(Layouts.LE_U16, (long) slot * Rings.DESC_SIZE + Rings.PACKED_DESC_FLAGS) & 0xffff;
                slots++;
            }
            int id = desc.get(Layouts.LE_U16, (long) slot * Rings.DESC_SIZE + Rings.PACKED_DESC_ID) & 0xffff;
            if (id >= size) {
                throw fail(Reason.BUFFER_ID_OUT_OF_RANGE, head, "buffer id=" + id + ", size=" + size);
            }
            DescriptorChain chain = chains[id];
            if (chain.inFlight) {
                throw fail(Reason.BUFFER_ID_IN_USE, head, "buffer id=" + id + " is already in flight");
            }
            chain.reset();
            chain.ringPosition = head;
            chain.slots = slots;
            slot = head;
            for (int n = 0; n < slots; n++) {
                at = (long) slot * Rings.DESC_SIZE;
                // Two 64-bit reads: addr, then len | id << 32 | flags << 48 (little-endian).
                long address = desc.get(Layouts.LE_U64, at + Rings.DESC_ADDR);
                long word = desc.get(Layouts.LE_U64, at + Rings.DESC_LEN);
                int length = (int) word;
                int f = n == 0 ? flags : (int) (word >>> 48);
                if ((f & Rings.F_INDIRECT) != 0) {
                    if ((f & Rings.F_NEXT) != 0) {
                        throw fail(Reason.INDIRECT_WITH_NEXT, head, "slot " + slot + ", flags=" + Unsigned.hex(f));
                    }
                    appendIndirect(chain, head, address, length, true);
                } else {
                    appendBuffer(chain, head, address, length, (f & Rings.F_WRITE) != 0);
                }
                slot = slot + 1 == size ? 0 : slot + 1;
            }
            nextAvail += slots;
            if (nextAvail >= size) {
                nextAvail -= size;
                availWrap = !availWrap;
            }
            handOut(chain);
            return chain;
        } catch (IllegalStateException e) {
            throw unmapped(e);
        }
    }

    @Override
    public void stageUsed(DescriptorChain chain, long writtenBytes) throws VirtqueueException {
        checkUsable();
        complete(chain, writtenBytes);
        long at = (long) nextUsed * Rings.DESC_SIZE;
        int flags = usedWrap ? Rings.F_AVAIL | Rings.F_USED : 0;
        if (writtenBytes > 0) {
            flags |= Rings.F_WRITE;
        }
        try {
            desc.set(Layouts.LE_U16, at + Rings.PACKED_DESC_ID, (short) chain.id);
            desc.set(Layouts.LE_U32, at + Rings.DESC_LEN, (int) writtenBytes);
            if (staged == 0) {
                deferredSlot = nextUsed;
                deferredFlags = flags;
            } else {
                // Release: id and len above are visible before the flags that mark the slot used. The
                // driver cannot get here before the batch's first flags are published anyway.
                Rings.U16.setRelease(desc, at + Rings.PACKED_DESC_FLAGS, (short) flags);
            }
        } catch (IllegalStateException e) {
            throw unmapped(e);
        }
        logRingWrite(at, Rings.DESC_SIZE);
        nextUsed += chain.slots;
        if (nextUsed >= size) {
            nextUsed -= size;
            usedWrap = !usedWrap;
        }
        stagedSlots += chain.slots;
        staged++;
    }

    @Override
    public void publishUsed() throws VirtqueueException {
        checkUsable();
        if (staged == 0) {
            return;
        }
        try {
            // Release: every used descriptor of the batch is written before the first one's flags, which
            // is where the driver looks next (§2.8 "Supplying Buffers to The Device").
            Rings.U16.setRelease(desc, (long) deferredSlot * Rings.DESC_SIZE + Rings.PACKED_DESC_FLAGS,
                    (short) deferredFlags);
        } catch (IllegalStateException e) {
            throw unmapped(e);
        }
        staged = 0;
        // Saturate at the ring size: beyond that the event offset was passed for sure.
        slotsSinceSignal = Math.min(size, slotsSinceSignal + stagedSlots);
        stagedSlots = 0;
        publishedUsed = nextUsed;
        publishedWrap = usedWrap;
        observer.usedIndexPublished(nextUsed, usedWrap);
    }

    @Override
    public boolean needsNotification() throws VirtqueueException {
        checkUsable();
        // Full fence (§2.8 "Event Suppression Structure Format"): the used flags we published must be visible before we read the driver's
        // event suppression structure, or both sides could miss each other.
        VarHandle.fullFence();
        boolean valid = signalledValid;
        int slots = slotsSinceSignal;
        if (valid && slots == 0) {
            return false;
        }
        int old = signalledUsed;
        signalledUsed = publishedUsed;
        signalledValid = true;
        slotsSinceSignal = 0;
        try {
            // Acquire: read the driver's current wish after the fence.
            int flags = (short) Rings.U16.getAcquire(driverEvent, EVENT_FLAGS) & 0xffff;
            if (flags == Rings.EVENT_DISABLE) {
                return false;
            }
            if (flags == Rings.EVENT_DESC && eventIdx) {
                if (!valid || slots >= size) {
                    return true;
                }
                int offWrap = (short) Rings.U16.getAcquire(driverEvent, EVENT_OFF_WRAP) & 0xffff;
                return Rings.packedNeedEvent(offWrap, publishedUsed, old, publishedWrap, size);
            }
            return true;
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
                // Ask for a kick when the driver makes the descriptor at our next avail position available.
                Rings.U16.setRelease(deviceEvent, EVENT_OFF_WRAP, (short) (nextAvail | (availWrap ? 0x8000 : 0)));
                Rings.U16.setRelease(deviceEvent, EVENT_FLAGS, (short) Rings.EVENT_DESC);
            } else {
                Rings.U16.setRelease(deviceEvent, EVENT_FLAGS, (short) Rings.EVENT_ENABLE);
            }
            // Full fence: the store above must be visible before we look at the ring again; the driver
            // publishes a descriptor, fences and reads our flags, so one of us sees the other.
            VarHandle.fullFence();
            if (resubmitCount > 0) {
                return true;
            }
            int flags = (short) Rings.U16.getAcquire(desc, (long) nextAvail * Rings.DESC_SIZE + Rings.PACKED_DESC_FLAGS)
                    & 0xffff;
            return Rings.isAvailable(flags, availWrap);
        } catch (IllegalStateException e) {
            throw unmapped(e);
        }
    }

    @Override
    public void disableNotifications() throws VirtqueueException {
        checkUsable();
        if (kicksSuppressed) {
            return;
        }
        try {
            Rings.U16.setRelease(deviceEvent, EVENT_FLAGS, (short) Rings.EVENT_DISABLE);
        } catch (IllegalStateException e) {
            throw unmapped(e);
        }
        kicksSuppressed = true;
    }

    @Override
    public QueueState exportState() {
        requireConfigured();
        return new QueueState(size, config.descAddr(), config.driverAddr(), config.deviceAddr(), nextAvail, nextUsed,
                availWrap, usedWrap, eventIdx);
    }

    @Override
    public void importState(QueueConfig template, QueueState state, GuestMemory memory) throws VirtqueueException {
        if (state.nextAvail() >= state.size() || state.nextUsed() >= state.size()) {
            throw new VirtqueueException(Reason.DESCRIPTOR_INDEX_OUT_OF_RANGE, template.name(), -1,
                    "packed state slots out of range, nextAvail=" + state.nextAvail() + ", nextUsed=" + state.nextUsed()
                            + ", size=" + state.size());
        }
        long features = state.eventIdx() ? template.features() | VirtioFeature.EVENT_IDX.mask()
                : template.features() & ~VirtioFeature.EVENT_IDX.mask();
        configure(new QueueConfig(template.name(), state.size(), state.descAddr(), state.driverAddr(),
                state.deviceAddr(), features), memory);
        nextAvail = state.nextAvail();
        availWrap = state.availWrapCounter();
        nextUsed = state.nextUsed();
        usedWrap = state.usedWrapCounter();
        publishedUsed = nextUsed;
        publishedWrap = usedWrap;
        signalledUsed = nextUsed;
    }

    /** {@return the ring slot the device reads next} */
    public int nextAvail() {
        return nextAvail;
    }

    /** {@return the device's avail wrap counter} */
    public boolean availWrapCounter() {
        return availWrap;
    }

    /** {@return the ring slot the device writes its next used descriptor to} */
    public int nextUsed() {
        return nextUsed;
    }

    /** {@return the device's used wrap counter} */
    public boolean usedWrapCounter() {
        return usedWrap;
    }

    @Override
    public String toString() {
        return "PackedQueue[" + name + ", size=" + size + ", nextAvail=" + nextAvail + (availWrap ? "/1" : "/0")
                + ", nextUsed=" + nextUsed + (usedWrap ? "/1" : "/0") + ", inFlight=" + inFlight
                + (broken ? ", broken" : "") + "]";
    }
}
