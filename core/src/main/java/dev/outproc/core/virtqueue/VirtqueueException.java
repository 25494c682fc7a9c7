package dev.outproc.core.virtqueue;

import java.io.IOException;

/**
 * A virtqueue that the guest (or, on the driver side, the device) filled with values the specification
 * forbids, or a ring configuration that cannot be used.
 *
 * <p>The message names the queue, the chain head (split: head descriptor index; packed: ring slot of
 * the first descriptor, or the buffer id where known; {@code -1} when no chain is involved) and the
 * offending values. After a guest-caused error the queue is marked broken
 * ({@link DeviceQueue#isBroken()}); a higher layer then sets {@code DEVICE_NEEDS_RESET} (VIRTIO 1.x §2.1 "Device Status Field").
 */
public final class VirtqueueException extends IOException {
    private static final long serialVersionUID = 1L;

    /** What was wrong. */
    public enum Reason {
        /** Queue size not a power of two (split) or zero / above 32768 (§2.7, §2.8). */
        QUEUE_SIZE_INVALID,
        /** A ring address is not aligned as §2.7 / §2.8 require (descriptors 16, avail 2, used 4, events 4). */
        RING_MISALIGNED,
        /** A ring does not lie wholly inside one guest memory region. */
        RING_OUTSIDE_MEMORY,
        /** The avail index moved by more than the queue size since the last pop (§2.7 "The Virtqueue Available Ring"). */
        AVAIL_INDEX_JUMP,
        /** A descriptor index (head or next) is not below the queue size or the indirect table length. */
        DESCRIPTOR_INDEX_OUT_OF_RANGE,
        /** A chain has more descriptors than the queue (or indirect table) holds: a loop (§2.7 "The Virtqueue Descriptor Table"). */
        DESCRIPTOR_LOOP,
        /** A head that is still in flight was made available again. */
        DESCRIPTOR_IN_USE,
        /** An indirect descriptor although VIRTIO_F_INDIRECT_DESC was not negotiated. */
        INDIRECT_NOT_NEGOTIATED,
        /** An indirect descriptor that also has NEXT set (§2.7 "Indirect Descriptors"). */
        INDIRECT_WITH_NEXT,
        /** An indirect descriptor inside an indirect table (§2.7 "Indirect Descriptors"). */
        NESTED_INDIRECT,
        /** An indirect table of length zero. */
        INDIRECT_TABLE_EMPTY,
        /** An indirect table whose length is not a multiple of 16. */
        INDIRECT_TABLE_MISALIGNED,
        /** An indirect table of more than 1024 entries ({@link DescriptorChain#MAX_BUFFERS}). */
        INDIRECT_TABLE_TOO_LONG,
        /** A buffer or indirect table outside guest memory (or across a region boundary). */
        BUFFER_OUTSIDE_MEMORY,
        /** address + length wraps past 2^64. */
        ADDRESS_OVERFLOW,
        /** A device-readable descriptor after a device-writable one (§2.7 "Message Framing"). */
        WRITE_THEN_READ,
        /** The total length of a chain exceeds 2^32 - 1 bytes. */
        CHAIN_TOO_LARGE,
        /**
         * A chain of more than 1024 buffers (indirect tables expanded), or an indirect table of more than
         * 1024 entries: the bound on the heap one chain holds ({@link DescriptorChain#MAX_BUFFERS}).
         */
        CHAIN_TOO_LONG,
        /** A packed-ring buffer id not below the queue size. */
        BUFFER_ID_OUT_OF_RANGE,
        /** A packed-ring buffer id that is already in flight. */
        BUFFER_ID_IN_USE,
        /** Guest memory of the chain was unmapped (memory table changed while it was in flight). */
        MEMORY_UNMAPPED,
        /** A copy asked for more bytes than the chain's readable or writable buffers hold. */
        BUFFER_TOO_SHORT,
        /** The queue was marked broken by an earlier error. */
        BROKEN,
        /** Driver side: the device returned an id that is not in flight. */
        USED_ID_INVALID,
        /** Driver side: the device returned a length above the chain's writable bytes. */
        USED_LENGTH_INVALID
    }

    private final Reason reason;
    private final String queueName;
    private final int head;
    private final long address;

    /**
     * Creates the exception.
     *
     * @param reason what was wrong
     * @param queueName the queue's name given at configure
     * @param head the chain head or buffer id, -1 when none
     * @param details the offending values
     */
    public VirtqueueException(Reason reason, String queueName, int head, String details) {
        this(reason, queueName, head, -1, details);
    }

    /**
     * Creates the exception for a guest address that could not be translated.
     *
     * @param reason what was wrong
     * @param queueName the queue's name given at configure
     * @param head the chain head or buffer id, -1 when none
     * @param address the guest (or I/O virtual) address that missed, -1 when none
     * @param details the offending values
     */
    public VirtqueueException(Reason reason, String queueName, int head, long address, String details) {
        super("virtqueue " + queueName + ": " + reason + (head >= 0 ? ", head=" + head : "")
                + (details.isEmpty() ? "" : ", " + details));
        this.reason = reason;
        this.queueName = queueName;
        this.head = head;
        this.address = address;
    }

    /**
     * {@return the address that missed, for {@link Reason#BUFFER_OUTSIDE_MEMORY} (and -1 otherwise)}
     * With {@link DeviceQueue#setMissesRecoverable recoverable misses} this is the I/O virtual address
     * to look up in the IOTLB before popping again.
     */
    public long address() {
        return address;
    }

    /** {@return what was wrong} */
    public Reason reason() {
        return reason;
    }

    /** {@return the queue's name} */
    public String queueName() {
        return queueName;
    }

    /** {@return the chain head or buffer id involved, -1 when none} */
    public int head() {
        return head;
    }
}
