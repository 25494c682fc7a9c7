package dev.outproc.core.virtqueue;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestMemoryException;
import dev.outproc.core.memory.Layouts;
import dev.outproc.core.virtio.VirtioFeature;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;

/**
 * The driver side of a packed virtqueue (VIRTIO 1.x §2.8): a guest's view, for front-ends, tests and
 * benchmarks. Ids are buffer ids taken from a free-id stack; every descriptor of a chain carries the id.
 * See {@link PackedQueue} for the layout.
 *
 * <p>{@link #post} writes a chain's descriptors except the head's flags; {@link #publish()} stores the
 * heads' flags in order, with release, so a batch becomes visible chain by chain. With
 * VIRTIO_F_IN_ORDER a device may write one used descriptor for a batch, carrying the last buffer id
 * (§2.8 "In-order use of descriptors"): the older chains are then reported with length 0 and their
 * slots skipped.
 */
public final class PackedDriverQueue extends DriverQueueBase {
    private static final long EVENT_OFF_WRAP = 0;
    private static final long EVENT_FLAGS = 2;

    private final MemorySegment desc;
    private final MemorySegment driverEvent;
    private final MemorySegment deviceEvent;
    private final int[] freeIds;
    private final int[] chainSlots;
    private final int[] pendingHeadSlots;
    private final short[] pendingHeadFlags;
    private int pendingHeads;
    private int freeIdCount;
    private int freeSlots;
    private int nextAvail;
    private boolean availWrap = true;
    private int publishedAvail;
    private boolean publishedWrap = true;
    private int slotsSinceKick;
    private int kickedAvail;
    private boolean kickValid;
    private int nextUsed;
    private boolean usedWrap = true;

    /**
     * Lays a packed ring over existing guest memory and zeroes it.
     *
     * @param config addresses (descriptor ring, driver event area, device event area), size (1..32768), features
     * @param memory guest memory that holds the rings
     * @param indirectGpa start of the indirect table area ({@code size * maxIndirect * 16} bytes)
     * @param maxIndirect entries per indirect table, 0 for none
     * @throws GuestMemoryException when a ring is not inside guest memory
     */
    public PackedDriverQueue(QueueConfig config, GuestMemory memory, long indirectGpa, int maxIndirect)
            throws GuestMemoryException {
        super(config, memory, indirectGpa, maxIndirect);
        if (size <= 0 || size > QueueConfig.MAX_SIZE) {
            throw new IllegalArgumentException("packed queue size must be 1..32768, size=" + size);
        }
        this.desc = memory.slice(config.descAddr(), (long) size * Rings.DESC_SIZE);
        this.driverEvent = memory.slice(config.driverAddr(), 4);
        this.deviceEvent = memory.slice(config.deviceAddr(), 4);
        desc.fill((byte) 0);
        driverEvent.fill((byte) 0);
        deviceEvent.fill((byte) 0);
        this.freeIds = new int[size];
        for (int i = 0; i < size; i++) {
            freeIds[i] = size - 1 - i;
        }
        this.freeIdCount = size;
        this.freeSlots = size;
        this.chainSlots = new int[size];
        this.pendingHeadSlots = new int[size];
        this.pendingHeadFlags = new short[size];
    }

    /**
     * Allocates and zeroes a packed ring (and an indirect area) with {@code allocator}.
     *
     * @param name queue name
     * @param memory guest memory
     * @param allocator where to take the rings from
     * @param size queue size
     * @param features negotiated feature bits
     * @param maxIndirect entries per indirect table, 0 for none
     * @return the driver queue
     * @throws GuestMemoryException when the allocated space is not guest memory
     */
    public static PackedDriverQueue allocate(String name, GuestMemory memory, GpaAllocator allocator, int size,
                                             long features, int maxIndirect) throws GuestMemoryException {
        long descGpa = allocator.allocate((long) size * Rings.DESC_SIZE, 16);
        long driverGpa = allocator.allocate(4, 4);
        long deviceGpa = allocator.allocate(4, 4);
        long indirectGpa = maxIndirect > 0 ? allocator.allocate(indirectBytes(size, maxIndirect), 16) : 0;
        return new PackedDriverQueue(new QueueConfig(name, size, descGpa, driverGpa, deviceGpa,
                features | VirtioFeature.RING_PACKED.mask()), memory, indirectGpa, maxIndirect);
    }

    private int availBits() {
        // §2.8 "Driver and Device Ring Wrap Counters": a driver makes a descriptor available with AVAIL = wrap counter, USED = its inverse.
        return availWrap ? Rings.F_AVAIL : Rings.F_USED;
    }

    @Override
    public int post(boolean indirect) {
        checkStaged(indirect);
        int needed = indirect ? 1 : stagedCount;
        if (needed > freeSlots || freeIdCount == 0) {
            return -1;
        }
        int id = freeIds[--freeIdCount];
        int headSlot = nextAvail;
        int headFlags;
        if (indirect) {
            long table = writeIndirectTable(id, true);
            headFlags = Rings.F_INDIRECT | availBits();
            writeDescriptor(nextAvail, table, stagedCount * Rings.DESC_SIZE, id);
            advance();
        } else {
            headFlags = 0;
            // Locals: native stores may alias any field as far as the JIT knows.
            MemorySegment ring = desc;
            long[] addresses = stagedAddresses;
            int[] lengths = stagedLengths;
            boolean[] writable = stagedWritable;
            int n = stagedCount;
            int slot = nextAvail;
            boolean wrap = availWrap;
            for (int i = 0; i < n; i++) {
                // §2.8 "Driver and Device Ring Wrap Counters": a driver makes a descriptor available with AVAIL = wrap counter, USED = its inverse.
                int flags = (writable[i] ? Rings.F_WRITE : 0) | (i + 1 < n ? Rings.F_NEXT : 0)
                        | (wrap ? Rings.F_AVAIL : Rings.F_USED);
                long at = (long) slot * Rings.DESC_SIZE;
                ring.set(Layouts.LE_U64, at + Rings.DESC_ADDR, addresses[i]);
                if (i == 0) {
                    ring.set(Layouts.LE_U32, at + Rings.DESC_LEN, lengths[i]);
                    ring.set(Layouts.LE_U16, at + Rings.PACKED_DESC_ID, (short) id);
                    headFlags = flags;
                } else {
                    // Plain: len | id << 32 | flags << 48, published by the release store of the head's flags.
                    ring.set(Layouts.LE_U64, at + Rings.DESC_LEN,
                            Integer.toUnsignedLong(lengths[i]) | (long) id << 32 | (long) flags << 48);
                }
                if (++slot == size) {
                    slot = 0;
                    wrap = !wrap;
                }
            }
            nextAvail = slot;
            availWrap = wrap;
        }
        pendingHeadSlots[pendingHeads] = headSlot;
        pendingHeadFlags[pendingHeads] = (short) headFlags;
        pendingHeads++;
        chainSlots[id] = needed;
        freeSlots -= needed;
        markPosted(id);
        return id;
    }

    private void advance() {
        if (++nextAvail == size) {
            nextAvail = 0;
            availWrap = !availWrap;
        }
    }

    private void writeDescriptor(int slot, long address, int length, int id) {
        long at = (long) slot * Rings.DESC_SIZE;
        desc.set(Layouts.LE_U64, at + Rings.DESC_ADDR, address);
        // len and id in one 32+16-bit pair; flags are stored separately (release for the head).
        desc.set(Layouts.LE_U32, at + Rings.DESC_LEN, length);
        desc.set(Layouts.LE_U16, at + Rings.PACKED_DESC_ID, (short) id);
    }

    @Override
    public void publish() {
        for (int i = 0; i < pendingHeads; i++) {
            // Release: the chain's other descriptors (and earlier chains) are visible before its head
            // becomes available (§2.8 "Supplying Buffers to The Device").
            Rings.U16.setRelease(desc, (long) pendingHeadSlots[i] * Rings.DESC_SIZE + Rings.PACKED_DESC_FLAGS,
                    pendingHeadFlags[i]);
        }
        if (pendingHeads > 0) {
            int slots = nextAvail - publishedAvail;
            if (slots <= 0) {
                slots += size;
            }
            slotsSinceKick = Math.min(size, slotsSinceKick + slots);
            pendingHeads = 0;
            publishedAvail = nextAvail;
            publishedWrap = availWrap;
        }
    }

    @Override
    public boolean kickNeeded() {
        // Full fence (§2.8 "Event Suppression Structure Format"): the heads' flags must be visible before we read the device's event area.
        VarHandle.fullFence();
        boolean valid = kickValid;
        int slots = slotsSinceKick;
        if (valid && slots == 0) {
            return false;
        }
        int old = kickedAvail;
        kickedAvail = publishedAvail;
        kickValid = true;
        slotsSinceKick = 0;
        int flags = (short) Rings.U16.getAcquire(deviceEvent, EVENT_FLAGS) & 0xffff;
        if (flags == Rings.EVENT_DISABLE) {
            return false;
        }
        if (flags == Rings.EVENT_DESC && eventIdx) {
            if (!valid || slots >= size) {
                return true;
            }
            int offWrap = (short) Rings.U16.getAcquire(deviceEvent, EVENT_OFF_WRAP) & 0xffff;
            return Rings.packedNeedEvent(offWrap, publishedAvail, old, publishedWrap, size);
        }
        return true;
    }

    @Override
    public long pollUsed() throws VirtqueueException {
        if (skipTarget >= 0) {
            int id = takeSkipped();
            return release(id, skippedLength(id));
        }
        long at = (long) nextUsed * Rings.DESC_SIZE;
        // Acquire: the device writes id and len before the flags that mark the slot used.
        int flags = (short) Rings.U16.getAcquire(desc, at + Rings.PACKED_DESC_FLAGS) & 0xffff;
        if (!Rings.isUsed(flags, usedWrap)) {
            return NONE;
        }
        if (inFlight == 0) {
            throw new VirtqueueException(VirtqueueException.Reason.USED_ID_INVALID, config.name(), -1,
                    "used descriptor at slot " + nextUsed + " with nothing in flight, flags=0x" + Integer.toHexString(flags));
        }
        int id = desc.get(Layouts.LE_U16, at + Rings.PACKED_DESC_ID) & 0xffff;
        long length = Integer.toUnsignedLong(desc.get(Layouts.LE_U32, at + Rings.DESC_LEN));
        checkUsed(id, length);
        if (inOrder) {
            int oldest = takeInOrder(id, length);
            if (oldest != id) {
                return release(oldest, 0);
            }
        }
        return release(id, length);
    }

    /** Skips the chain's slots and returns its id to the free stack. */
    private long release(int id, long length) {
        int slots = chainSlots[id];
        nextUsed += slots;
        if (nextUsed >= size) {
            nextUsed -= size;
            usedWrap = !usedWrap;
        }
        freeSlots += slots;
        freeIds[freeIdCount++] = id;
        return reaped(id, length);
    }

    @Override
    public boolean enableUsedNotifications() {
        if (eventIdx) {
            Rings.U16.setRelease(driverEvent, EVENT_OFF_WRAP, (short) (nextUsed | (usedWrap ? 0x8000 : 0)));
            Rings.U16.setRelease(driverEvent, EVENT_FLAGS, (short) Rings.EVENT_DESC);
        } else {
            Rings.U16.setRelease(driverEvent, EVENT_FLAGS, (short) Rings.EVENT_ENABLE);
        }
        // Full fence: the store above before looking at the ring again (mirror of the device's order).
        VarHandle.fullFence();
        int flags = (short) Rings.U16.getAcquire(desc, (long) nextUsed * Rings.DESC_SIZE + Rings.PACKED_DESC_FLAGS) & 0xffff;
        return Rings.isUsed(flags, usedWrap);
    }

    @Override
    public void disableUsedNotifications() {
        Rings.U16.setRelease(driverEvent, EVENT_FLAGS, (short) Rings.EVENT_DISABLE);
    }

    /** {@return how many ring slots are free} */
    public int freeSlots() {
        return freeSlots;
    }
}
