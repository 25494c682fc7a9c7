package dev.outproc.core.virtqueue;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestMemoryException;
import dev.outproc.core.memory.Layouts;
import dev.outproc.core.virtio.VirtioFeature;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;

/**
 * The driver side of a split virtqueue (VIRTIO 1.x §2.7): a guest's view, for front-ends, tests and
 * benchmarks. Ids are head descriptor indices. See {@link SplitQueue} for the layout.
 *
 * <p>Free descriptors are kept in a list linked through the driver's own copy of the {@code next}
 * fields, so nothing the device writes can corrupt it. With indirect posting a chain takes one ring
 * descriptor and the table of its head in the indirect area ({@code maxIndirect} entries per head).
 * With VIRTIO_F_IN_ORDER descriptors are used in ring order, and a device may write one used element
 * for a batch (§2.7 "In-order use of descriptors"): the older chains of the batch are then reported with
 * length 0, the last with the element's length.
 */
public final class SplitDriverQueue extends DriverQueueBase {
    private final MemorySegment desc;
    private final MemorySegment avail;
    private final MemorySegment used;
    private final int mask;
    private final int[] nextFree;
    private final int[] chainLast;
    private final int[] chainCount;
    private int freeHead;
    private int freeTail;
    private int freeCount;
    private int availShadow;
    private int publishedAvail;
    private int kickedAvail;
    private boolean kickValid;
    private int lastUsed;
    private int cachedUsedIdx;

    /**
     * Lays a split ring over existing guest memory and zeroes it.
     *
     * @param config addresses, size (a power of two up to 32768) and features
     * @param memory guest memory that holds the rings
     * @param indirectGpa start of the indirect table area ({@code size * maxIndirect * 16} bytes), ignored when
     *        {@code maxIndirect} is 0
     * @param maxIndirect entries per indirect table, 0 for none
     * @throws GuestMemoryException when a ring is not inside guest memory
     */
    public SplitDriverQueue(QueueConfig config, GuestMemory memory, long indirectGpa, int maxIndirect)
            throws GuestMemoryException {
        super(config, memory, indirectGpa, maxIndirect);
        if (Integer.bitCount(size) != 1 || size > QueueConfig.MAX_SIZE) {
            throw new IllegalArgumentException("split queue size must be a power of two up to 32768, size=" + size);
        }
        this.desc = memory.slice(config.descAddr(), (long) size * Rings.DESC_SIZE);
        this.avail = memory.slice(config.driverAddr(), 6 + 2L * size);
        this.used = memory.slice(config.deviceAddr(), 6 + 8L * size);
        desc.fill((byte) 0);
        avail.fill((byte) 0);
        used.fill((byte) 0);
        this.mask = size - 1;
        this.nextFree = new int[size];
        this.chainLast = new int[size];
        this.chainCount = new int[size];
        for (int i = 0; i < size; i++) {
            nextFree[i] = i + 1 == size ? 0 : i + 1;
        }
        this.freeHead = 0;
        this.freeTail = size - 1;
        this.freeCount = size;
    }

    /**
     * Allocates and zeroes a split ring (and an indirect area) with {@code allocator}.
     *
     * @param name queue name
     * @param memory guest memory
     * @param allocator where to take the rings from
     * @param size queue size
     * @param features negotiated feature bits ({@link VirtioFeature#EVENT_IDX}, {@link VirtioFeature#INDIRECT_DESC})
     * @param maxIndirect entries per indirect table, 0 for none
     * @return the driver queue
     * @throws GuestMemoryException when the allocated space is not guest memory
     */
    public static SplitDriverQueue allocate(String name, GuestMemory memory, GpaAllocator allocator, int size,
                                            long features, int maxIndirect) throws GuestMemoryException {
        long descGpa = allocator.allocate((long) size * Rings.DESC_SIZE, 16);
        long availGpa = allocator.allocate(6 + 2L * size, 2);
        long usedGpa = allocator.allocate(6 + 8L * size, 4);
        long indirectGpa = maxIndirect > 0 ? allocator.allocate(indirectBytes(size, maxIndirect), 16) : 0;
        return new SplitDriverQueue(new QueueConfig(name, size, descGpa, availGpa, usedGpa, features), memory,
                indirectGpa, maxIndirect);
    }

    @Override
    public int post(boolean indirect) {
        checkStaged(indirect);
        int needed = indirect ? 1 : stagedCount;
        if (needed > freeCount) {
            return -1;
        }
        int head = freeHead;
        int index = head;
        if (indirect) {
            long table = writeIndirectTable(head, false);
            writeDescriptor(desc, head, table, stagedCount * Rings.DESC_SIZE, Rings.F_INDIRECT, 0);
            freeHead = nextFree[head];
            chainLast[head] = head;
        } else {
            // Locals: native stores may alias any field as far as the JIT knows, so fields would be reloaded.
            MemorySegment table = desc;
            int[] links = nextFree;
            long[] addresses = stagedAddresses;
            int[] lengths = stagedLengths;
            boolean[] writable = stagedWritable;
            int n = stagedCount;
            for (int i = 0; i < n; i++) {
                boolean more = i + 1 < n;
                int next = links[index];
                int flags = (writable[i] ? Rings.F_WRITE : 0) | (more ? Rings.F_NEXT : 0);
                writeDescriptor(table, index, addresses[i], lengths[i], flags, more ? next : 0);
                if (!more) {
                    chainLast[head] = index;
                }
                index = next;
            }
            freeHead = index;
        }
        chainCount[head] = needed;
        freeCount -= needed;
        // Plain store: published by the release store of avail.idx in publish().
        avail.set(Layouts.LE_U16, 4 + 2L * (availShadow & mask), (short) head);
        availShadow = (availShadow + 1) & 0xffff;
        markPosted(head);
        return head;
    }

    private static void writeDescriptor(MemorySegment desc, int index, long address, int length, int flags, int next) {
        long at = (long) index * Rings.DESC_SIZE;
        desc.set(Layouts.LE_U64, at + Rings.DESC_ADDR, address);
        // len | flags << 32 | next << 48 in one little-endian store.
        desc.set(Layouts.LE_U64, at + Rings.DESC_LEN,
                Integer.toUnsignedLong(length) | (long) (flags & 0xffff) << 32 | (long) (next & 0xffff) << 48);
    }

    @Override
    public void publish() {
        if (publishedAvail == availShadow) {
            return;
        }
        // Release: descriptors and avail ring entries written in post() become visible before the index
        // that exposes them (§2.7 "Supplying Buffers to The Device").
        Rings.U16.setRelease(avail, 2L, (short) availShadow);
        publishedAvail = availShadow;
    }

    @Override
    public boolean kickNeeded() {
        // Full fence (§2.7 "Used/Available Buffer Notification Suppression"): avail.idx must be visible before we read the device's suppression field.
        VarHandle.fullFence();
        int old = kickedAvail;
        boolean valid = kickValid;
        if (valid && old == publishedAvail) {
            return false;
        }
        kickedAvail = publishedAvail;
        kickValid = true;
        if (eventIdx) {
            int availEvent = (short) Rings.U16.getAcquire(used, 4 + 8L * size) & 0xffff;
            return !valid || Rings.needEvent(availEvent, publishedAvail, old);
        }
        return ((short) Rings.U16.getAcquire(used, 0L) & Rings.USED_F_NO_NOTIFY) == 0;
    }

    @Override
    public long pollUsed() throws VirtqueueException {
        if (skipTarget >= 0) {
            int id = takeSkipped();
            return release(id, skippedLength(id));
        }
        if (lastUsed == cachedUsedIdx) {
            // Acquire: the used elements the device wrote before its release store of used.idx.
            int usedIdx = (short) Rings.U16.getAcquire(used, 2L) & 0xffff;
            int pending = (usedIdx - lastUsed) & 0xffff;
            if (pending == 0) {
                return NONE;
            }
            if (pending > inFlight) {
                throw new VirtqueueException(VirtqueueException.Reason.USED_ID_INVALID, config.name(), -1,
                        "used idx=" + usedIdx + " moved past the chains in flight, last used=" + lastUsed
                                + ", in flight=" + inFlight);
            }
            cachedUsedIdx = usedIdx;
        }
        long at = 4 + 8L * (lastUsed & mask);
        long element = used.get(Layouts.LE_U64, at);
        int id = (int) element;
        long length = element >>> 32;
        checkUsed(id, length);
        lastUsed = (lastUsed + 1) & 0xffff;
        if (inOrder) {
            int oldest = takeInOrder(id, length);
            if (oldest != id) {
                return release(oldest, 0);
            }
        }
        return release(id, length);
    }

    /** Returns the chain's descriptors to the free list (our own links, never the device-visible ones). */
    private long release(int id, long length) {
        if (inOrder) {
            // IN_ORDER: descriptors are used in ring order (§2.7 "The Virtqueue Descriptor Table"), so a
            // completed chain goes to the tail of the free list; completions come in order, so the list
            // stays in ring order and each descriptor's next is its successor.
            if (freeCount == 0) {
                freeHead = id;
            } else {
                nextFree[freeTail] = id;
            }
            freeTail = chainLast[id];
            nextFree[freeTail] = freeTail + 1 == size ? 0 : freeTail + 1;
        } else {
            nextFree[chainLast[id]] = freeHead;
            freeHead = id;
        }
        freeCount += chainCount[id];
        return reaped(id, length);
    }

    @Override
    public boolean enableUsedNotifications() {
        if (eventIdx) {
            // used_event: interrupt once the device moves used.idx past lastUsed.
            Rings.U16.setRelease(avail, 4 + 2L * size, (short) lastUsed);
        } else {
            Rings.U16.setRelease(avail, 0L, (short) 0);
        }
        // Full fence: the store above before re-reading used.idx (mirror of the device's order).
        VarHandle.fullFence();
        return ((short) Rings.U16.getAcquire(used, 2L) & 0xffff) != lastUsed;
    }

    @Override
    public void disableUsedNotifications() {
        if (eventIdx) {
            // Far from any index the device reaches soon: §2.7 "Used/Available Buffer Notification Suppression" leaves no flag for this with EVENT_IDX.
            Rings.U16.setRelease(avail, 4 + 2L * size, (short) (lastUsed + 0x8000));
        } else {
            Rings.U16.setRelease(avail, 0L, (short) Rings.AVAIL_F_NO_INTERRUPT);
        }
    }

    /** {@return how many descriptors are free} */
    public int freeDescriptors() {
        return freeCount;
    }
}
