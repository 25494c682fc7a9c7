package dev.outproc.core.virtqueue;

import dev.outproc.core.memory.Layouts;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * Reads single ring fields the way the queues do (little-endian, acquire where the field publishes
 * something), for code that inspects a ring before or without a {@link DeviceQueue} serving it: inflight
 * recovery after a back-end restart, replay checks, diagnostics. Every method takes the ring area as a
 * segment (resolve it from guest memory first) and checks its bounds; none writes.
 *
 * <p>Packed ring descriptor ({@code descRing} holds {@code size} of them, VIRTIO 1.3 §2.8.13):
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +---------------------------------------------------------------+
 * |                        addr (le64)                            | 0
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                        len (le32)                             | 8
 * +-------------------------------+-------------------------------+
 * |          id (le16)            |         flags (le16)          | 12
 * +-------------------------------+-------------------------------+
 * </pre>
 * Split used ring ({@code usedRing}, §2.7.8): {@code flags (le16)} at 0, {@code idx (le16)} at 2, then
 * the elements.
 */
public final class RingView {
    /** Packed descriptor flag VIRTQ_DESC_F_NEXT: the chain goes on in the next slot. */
    public static final int PACKED_F_NEXT = Rings.F_NEXT;
    /** Packed descriptor flag VIRTQ_DESC_F_WRITE. */
    public static final int PACKED_F_WRITE = Rings.F_WRITE;
    /** Packed descriptor flag VIRTQ_DESC_F_INDIRECT. */
    public static final int PACKED_F_INDIRECT = Rings.F_INDIRECT;
    /** Packed descriptor flag VIRTQ_DESC_F_AVAIL (bit 7). */
    public static final int PACKED_F_AVAIL = Rings.F_AVAIL;
    /** Packed descriptor flag VIRTQ_DESC_F_USED (bit 15). */
    public static final int PACKED_F_USED = Rings.F_USED;

    private static final long USED_IDX_OFFSET = 2;

    private RingView() {
    }

    /**
     * {@return whether flags mark a packed descriptor available to the device for a wrap counter}
     * (§2.8.1: AVAIL equals the driver's wrap counter and USED differs from it).
     *
     * @param flags the descriptor's flags
     * @param wrapCounter the device's view of the driver's ring wrap counter at that slot
     */
    public static boolean packedIsAvailable(int flags, boolean wrapCounter) {
        return Rings.isAvailable(flags, wrapCounter);
    }

    /**
     * {@return whether flags mark a packed descriptor used for a wrap counter} (AVAIL and USED both equal it).
     *
     * @param flags the descriptor's flags
     * @param wrapCounter the wrap counter
     */
    public static boolean packedIsUsed(int flags, boolean wrapCounter) {
        return Rings.isUsed(flags, wrapCounter);
    }

    /**
     * {@return the flags of the packed descriptor at {@code slot}, read with acquire ordering} (the driver
     * publishes a descriptor by its flags).
     *
     * @param descRing the descriptor ring, {@code 16 * size} bytes, 16-aligned
     * @param slot the slot, below the ring's size
     * @throws IndexOutOfBoundsException when the slot lies outside {@code descRing}
     */
    public static int packedFlags(MemorySegment descRing, int slot) {
        long at = packedSlotOffset(descRing, slot);
        return (short) Rings.U16.getAcquire(descRing, at + Rings.PACKED_DESC_FLAGS) & 0xffff;
    }

    /**
     * {@return the buffer id of the packed descriptor at {@code slot}} Read it after {@link #packedFlags}
     * showed the descriptor available: that acquire orders this plain read.
     *
     * @param descRing the descriptor ring
     * @param slot the slot, below the ring's size
     * @throws IndexOutOfBoundsException when the slot lies outside {@code descRing}
     */
    public static int packedBufferId(MemorySegment descRing, int slot) {
        long at = packedSlotOffset(descRing, slot);
        return descRing.get(Layouts.LE_U16, at + Rings.PACKED_DESC_ID) & 0xffff;
    }

    /**
     * {@return whether the packed descriptor at {@code slot} is available for {@code wrapCounter}}
     *
     * @param descRing the descriptor ring
     * @param slot the slot, below the ring's size
     * @param wrapCounter the driver's wrap counter expected at that slot
     */
    public static boolean packedIsAvailable(MemorySegment descRing, int slot, boolean wrapCounter) {
        return packedIsAvailable(packedFlags(descRing, slot), wrapCounter);
    }

    /**
     * {@return the used index of a split ring ({@code used->idx}), little-endian, read with acquire
     * ordering} (what the guest sees as completed; vhost-user inflight recovery compares it with its log).
     *
     * @param usedRing the used ring, at least its first 4 bytes, 4-aligned
     * @throws IndexOutOfBoundsException when {@code usedRing} is shorter than 4 bytes
     */
    public static int splitUsedIndex(MemorySegment usedRing) {
        Objects.checkFromIndexSize(USED_IDX_OFFSET, 2, usedRing.byteSize());
        return (short) Rings.U16.getAcquire(usedRing, USED_IDX_OFFSET) & 0xffff;
    }

    private static long packedSlotOffset(MemorySegment descRing, int slot) {
        long at = (long) slot * Rings.DESC_SIZE;
        Objects.checkFromIndexSize(at, Rings.DESC_SIZE, descRing.byteSize()); // a negative slot fails here too
        return at;
    }
}
