package dev.outproc.core.virtqueue;

import dev.outproc.core.memory.Layouts;

import java.lang.invoke.VarHandle;

/**
 * Layout constants and ordered accessors shared by the ring implementations.
 *
 * <p>Descriptors (both formats) are 16 bytes:
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +---------------------------------------------------------------+
 * |                        addr (le64)                            | 0
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                        len (le32)                             | 8
 * +-------------------------------+-------------------------------+
 * | split: flags / packed: id     | split: next / packed: flags   | 12
 * +-------------------------------+-------------------------------+
 * </pre>
 * Index and flag fields that order the two sides use aligned layouts with acquire/release; every other
 * field is read and written plainly with the unaligned {@link Layouts} (an indirect table need not be aligned).
 */
final class Rings {
    /** Aligned little-endian 16-bit ring field: coordinates (MemorySegment, long offset). */
    static final VarHandle U16 = Layouts.LE_U16_ALIGNED.varHandle();

    static final int DESC_SIZE = 16;
    static final int DESC_ADDR = 0;
    static final int DESC_LEN = 8;
    static final int SPLIT_DESC_FLAGS = 12;
    static final int SPLIT_DESC_NEXT = 14;
    static final int PACKED_DESC_ID = 12;
    static final int PACKED_DESC_FLAGS = 14;

    static final int F_NEXT = 1;
    static final int F_WRITE = 2;
    static final int F_INDIRECT = 4;
    /** Packed: VIRTQ_DESC_F_AVAIL (bit 7). */
    static final int F_AVAIL = 1 << 7;
    /** Packed: VIRTQ_DESC_F_USED (bit 15). */
    static final int F_USED = 1 << 15;

    /** Split: VRING_AVAIL_F_NO_INTERRUPT in avail.flags. */
    static final int AVAIL_F_NO_INTERRUPT = 1;
    /** Split: VRING_USED_F_NO_NOTIFY in used.flags. */
    static final int USED_F_NO_NOTIFY = 1;

    /** Packed event suppression flags (§2.8 "Event Suppression Structure Format"). */
    static final int EVENT_ENABLE = 0;
    static final int EVENT_DISABLE = 1;
    static final int EVENT_DESC = 2;

    /**
     * The most buffers one chain may have, indirect tables expanded. A split chain is also bounded by the
     * queue size (a loop ends there). VIRTIO 1.3 §2.7.5.3.1 forbids drivers a chain longer than the queue
     * size; 1024 is what real devices accept: QEMU's {@code VIRTQUEUE_MAX_SIZE} (per direction, "too
     * many write descriptors in indirect table" beyond it), Linux vhost's {@code UIO_MAXIOV}; DPDK's vhost
     * takes at most the queue size per indirect table and 256 buffers per chain. It bounds the heap a
     * guest can make us hold: 24 bytes per buffer of each chain in flight.
     */
    static final int MAX_CHAIN_BUFFERS = 1024;
    /** The largest total chain length in bytes. */
    static final long MAX_CHAIN_BYTES = 0xffff_ffffL;

    private Rings() {
    }

    /**
     * vring_need_event of VIRTIO 1.x §2.7 "Used/Available Buffer Notification Suppression": whether moving an index from {@code oldIdx} to
     * {@code newIdx} crossed {@code eventIdx}, all in 16-bit arithmetic.
     */
    static boolean needEvent(int eventIdx, int newIdx, int oldIdx) {
        return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
    }

    /** Packed ring: whether a descriptor's AVAIL/USED bits make it available for the given wrap counter. */
    static boolean isAvailable(int flags, boolean wrap) {
        boolean avail = (flags & F_AVAIL) != 0;
        boolean used = (flags & F_USED) != 0;
        return avail == wrap && used != wrap;
    }

    /** Packed ring: whether a descriptor's AVAIL/USED bits mark it used for the given wrap counter. */
    static boolean isUsed(int flags, boolean wrap) {
        boolean avail = (flags & F_AVAIL) != 0;
        boolean used = (flags & F_USED) != 0;
        return avail == used && used == wrap;
    }

    /**
     * Packed-ring event check (§2.8 "Event Suppression Structure Format", as in Linux and DPDK): whether publishing slots {@code old..new}
     * crossed the event offset {@code offWrap} (bits 0..14 offset, bit 15 wrap counter).
     */
    static boolean packedNeedEvent(int offWrap, int newSlot, int oldSlot, boolean wrap, int size) {
        int off = offWrap & 0x7fff;
        boolean eventWrap = (offWrap & 0x8000) != 0;
        int old = oldSlot;
        if (newSlot <= old) {
            old -= size;
        }
        if (eventWrap != wrap) {
            off -= size;
        }
        return needEvent(off & 0xffff, newSlot & 0xffff, old & 0xffff);
    }
}
