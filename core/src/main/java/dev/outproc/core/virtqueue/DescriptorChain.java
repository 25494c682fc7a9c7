package dev.outproc.core.virtqueue;

import dev.outproc.core.memory.DirtyLog;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * One available buffer as the device sees it: the chain's descriptors resolved to guest memory,
 * device-readable buffers first, then device-writable ones (the order VIRTIO 1.x §2.7 "Message Framing" requires).
 *
 * <h2 id="reuse">Reuse contract</h2>
 * A queue keeps one {@code DescriptorChain} per head index (split) or buffer id (packed) and reuses it,
 * so that {@link DeviceQueue#pop()} allocates nothing. A chain is valid from the {@code pop} that
 * returned it until the {@link DeviceQueue#addUsed} that completes it; afterwards the object may be
 * refilled by a later {@code pop} and must not be used (accessors that touch memory then throw
 * {@link IllegalStateException}). Do not keep chains across {@link DeviceQueue#setMemory}: the buffers
 * stay bound to the snapshot they were popped from.
 *
 * <h2 id="access">Access</h2>
 * {@link #regionSegment(int)} and {@link #regionOffset(int)} give buffer {@code i} without allocating
 * (the whole guest region plus the buffer's offset in it); {@link #segment(int)} slices a view (one small
 * allocation); {@link #readReadable} and {@link #writeWritable} copy across buffer boundaries. All are
 * bounds-checked; running past the guest's buffers gives {@link VirtqueueException.Reason#BUFFER_TOO_SHORT}.
 */
public final class DescriptorChain {
    /**
     * The most buffers a chain may have, indirect tables expanded (longer chains fail with
     * {@link VirtqueueException.Reason#CHAIN_TOO_LONG}). QEMU's and Linux vhost's limit too.
     */
    public static final int MAX_BUFFERS = Rings.MAX_CHAIN_BUFFERS;
    /**
     * A chain that grew beyond this many buffers gives its array back when it completes (and before it
     * is refilled), so an idle chain object holds at most {@code 24 * KEPT_CAPACITY} bytes of buffers.
     */
    static final int KEPT_CAPACITY = 64;
    private static final int INITIAL_CAPACITY = 4;

    private final String queueName;
    private final Object owner;
    int id;
    int count;
    int readable;
    long totalReadable;
    long totalWritable;
    /**
     * Three longs per buffer: guest address, offset in its region, and length | region index << 32. One
     * array keeps a chain in few cache lines; region indices (not segment references) avoid a GC write
     * barrier (a StoreLoad fence under G1) per buffer.
     */
    long[] buffers = new long[3 * INITIAL_CAPACITY];
    /** The mapped regions of the snapshot the chain was popped from (replaced only when it changes). */
    MemorySegment[] segments = new MemorySegment[0];
    /** Ring descriptors the chain occupies (packed: slots to skip when it is used). */
    int slots;
    /** The ring slot of the first descriptor (packed) or the head index (split). */
    int ringPosition;
    long sequence;
    boolean inFlight;

    DescriptorChain(String queueName, Object owner, int id) {
        this.queueName = queueName;
        this.owner = owner;
        this.id = id;
    }

    boolean ownedBy(Object queue) {
        return owner == queue;
    }

    void reset() {
        releaseOversized();
        count = 0;
        readable = 0;
        totalReadable = 0;
        totalWritable = 0;
        slots = 0;
    }

    /** Drops a buffers array grown past {@link #KEPT_CAPACITY}: a guest may not pin heap with long chains. */
    void releaseOversized() {
        if (buffers.length > 3 * KEPT_CAPACITY) {
            buffers = new long[3 * INITIAL_CAPACITY];
        }
    }

    void append(long address, int length, boolean writable, int regionIndex, long offset) {
        int at = 3 * count;
        if (at == buffers.length) {
            buffers = java.util.Arrays.copyOf(buffers, 2 * at);
        }
        long[] b = buffers;
        b[at] = address;
        b[at + 1] = offset;
        b[at + 2] = Integer.toUnsignedLong(length) | (long) regionIndex << 32;
        count++;
        long unsignedLength = Integer.toUnsignedLong(length);
        if (writable) {
            totalWritable += unsignedLength;
        } else {
            readable++;
            totalReadable += unsignedLength;
        }
    }

    private long len(int i) {
        return buffers[3 * i + 2] & 0xffff_ffffL;
    }

    private MemorySegment region(int i) {
        return segments[(int) (buffers[3 * i + 2] >>> 32)];
    }

    private long offset(int i) {
        return buffers[3 * i + 1];
    }

    /** {@return the head descriptor index (split) or buffer id (packed): what {@code addUsed} reports} */
    public int id() {
        return id;
    }

    /** {@return the number of buffers (descriptors, indirect ones expanded)} */
    public int bufferCount() {
        return count;
    }

    /**
     * {@return how many buffers this chain object holds room for: its heap is about 24 bytes per buffer of
     * room} It is at most {@link #MAX_BUFFERS} while the chain is in flight and at most 64 once it has
     * completed, whatever the guest sent.
     */
    public int bufferCapacity() {
        return buffers.length / 3;
    }

    /** {@return the number of device-readable buffers; they are buffers {@code 0..readableCount()-1}} */
    public int readableCount() {
        return readable;
    }

    /** {@return the number of device-writable buffers; they follow the readable ones} */
    public int writableCount() {
        return count - readable;
    }

    /** {@return the sum of the readable buffers' lengths} */
    public long totalReadable() {
        return totalReadable;
    }

    /** {@return the sum of the writable buffers' lengths} */
    public long totalWritable() {
        return totalWritable;
    }

    /** {@return the order in which this chain was popped, counting from 0 per queue configuration} */
    public long sequence() {
        return sequence;
    }

    /**
     * {@return where the chain starts in the ring: the head descriptor index (split) or the ring slot of
     * its first descriptor (packed)}
     */
    public int ringPosition() {
        return ringPosition;
    }

    /** {@return how many ring descriptors the chain occupies (an indirect table counts as one)} */
    public int ringDescriptors() {
        return slots;
    }

    /** {@return whether the chain is between pop and addUsed} */
    public boolean isInFlight() {
        return inFlight;
    }

    /**
     * {@return buffer {@code i}'s guest-physical address}
     *
     * @param i buffer index
     */
    public long address(int i) {
        return buffers[3 * Objects.checkIndex(i, count)];
    }

    /**
     * {@return buffer {@code i}'s length in bytes (unsigned 32-bit, as a long)}
     *
     * @param i buffer index
     */
    public long length(int i) {
        return len(Objects.checkIndex(i, count));
    }

    /**
     * {@return whether buffer {@code i} is device-writable}
     *
     * @param i buffer index
     */
    public boolean isWritable(int i) {
        return Objects.checkIndex(i, count) >= readable;
    }

    /**
     * {@return the whole mapped guest region holding buffer {@code i}; allocates nothing}
     *
     * @param i buffer index
     */
    public MemorySegment regionSegment(int i) {
        checkInFlight();
        return region(Objects.checkIndex(i, count));
    }

    /**
     * {@return the offset of buffer {@code i} inside {@link #regionSegment(int)}}
     *
     * @param i buffer index
     */
    public long regionOffset(int i) {
        return offset(Objects.checkIndex(i, count));
    }

    /**
     * {@return a zero-copy view of buffer {@code i} (allocates the view object)}
     *
     * @param i buffer index
     */
    public MemorySegment segment(int i) {
        checkInFlight();
        Objects.checkIndex(i, count);
        return region(i).asSlice(offset(i), len(i));
    }

    /**
     * Copies bytes out of the readable buffers, as if they were one contiguous stream.
     *
     * @param offset where to start in the readable stream
     * @param destination where to copy to
     * @param destinationOffset where to start in {@code destination}
     * @param length byte count
     * @throws VirtqueueException BUFFER_TOO_SHORT when the readable bytes end before {@code offset + length};
     *         MEMORY_UNMAPPED when the guest memory was unmapped meanwhile
     */
    public void readReadable(long offset, MemorySegment destination, long destinationOffset, long length)
            throws VirtqueueException {
        checkInFlight();
        checkRange(offset, length, totalReadable, "readable");
        try {
            long skip = offset;
            long done = 0;
            for (int i = 0; i < readable && done < length; i++) {
                long n = len(i);
                if (skip >= n) {
                    skip -= n;
                    continue;
                }
                long chunk = Math.min(n - skip, length - done);
                MemorySegment.copy(region(i), offset(i) + skip, destination, destinationOffset + done, chunk);
                done += chunk;
                skip = 0;
            }
        } catch (IllegalStateException e) {
            throw unmapped(e);
        }
    }

    /**
     * Copies bytes into the writable buffers, as if they were one contiguous stream.
     *
     * @param offset where to start in the writable stream
     * @param source where to copy from
     * @param sourceOffset where to start in {@code source}
     * @param length byte count
     * @throws VirtqueueException BUFFER_TOO_SHORT when the writable bytes end before {@code offset + length}
     *         (nothing is written then); MEMORY_UNMAPPED when the guest memory was unmapped meanwhile
     */
    public void writeWritable(long offset, MemorySegment source, long sourceOffset, long length)
            throws VirtqueueException {
        checkInFlight();
        checkRange(offset, length, totalWritable, "writable");
        try {
            long skip = offset;
            long done = 0;
            for (int i = readable; i < count && done < length; i++) {
                long n = len(i);
                if (skip >= n) {
                    skip -= n;
                    continue;
                }
                long chunk = Math.min(n - skip, length - done);
                MemorySegment.copy(source, sourceOffset + done, region(i), offset(i) + skip, chunk);
                done += chunk;
                skip = 0;
            }
        } catch (IllegalStateException e) {
            throw unmapped(e);
        }
    }

    /**
     * Copies bytes from this chain's readable buffers into another chain's writable buffers, both taken
     * as contiguous streams: one copy from guest memory to guest memory, with no bounce buffer (a net
     * device's loopback moves a frame from a transmit chain into receive chains this way). Allocates nothing.
     *
     * @param offset where to start in this chain's readable stream
     * @param target the chain to write into (in flight, possibly of another queue)
     * @param targetOffset where to start in {@code target}'s writable stream
     * @param length byte count
     * @throws VirtqueueException BUFFER_TOO_SHORT when either stream ends before the range does (nothing is
     *         copied then); MEMORY_UNMAPPED when guest memory was unmapped meanwhile
     */
    public void copyReadableTo(long offset, DescriptorChain target, long targetOffset, long length)
            throws VirtqueueException {
        checkInFlight();
        target.checkInFlight();
        checkRange(offset, length, totalReadable, "readable");
        target.checkRange(targetOffset, length, target.totalWritable, "writable");
        try {
            int from = 0;
            long fromSkip = offset;
            while (from < readable && fromSkip >= len(from) && fromSkip > 0) {
                fromSkip -= len(from);
                from++;
            }
            int to = target.readable;
            long toSkip = targetOffset;
            while (to < target.count && toSkip >= target.len(to) && toSkip > 0) {
                toSkip -= target.len(to);
                to++;
            }
            long done = 0;
            // The range checks above keep both indices inside their streams until length bytes are copied;
            // zero-length buffers give zero-length chunks and are stepped over.
            while (done < length) {
                long chunk = Math.min(Math.min(len(from) - fromSkip, target.len(to) - toSkip), length - done);
                MemorySegment.copy(region(from), offset(from) + fromSkip, target.region(to), target.offset(to) + toSkip, chunk);
                done += chunk;
                fromSkip += chunk;
                toSkip += chunk;
                if (fromSkip == len(from)) {
                    from++;
                    fromSkip = 0;
                }
                if (toSkip == target.len(to)) {
                    to++;
                    toSkip = 0;
                }
            }
        } catch (IllegalStateException e) {
            throw unmapped(e);
        }
    }

    /** Marks the pages of the first {@code writtenBytes} writable bytes dirty. */
    void markWritten(DirtyLog log, long writtenBytes) {
        long left = writtenBytes;
        for (int i = readable; i < count && left > 0; i++) {
            long n = Math.min(left, len(i));
            log.mark(buffers[3 * i], n);
            left -= n;
        }
    }

    private void checkInFlight() {
        if (!inFlight) {
            throw new IllegalStateException("descriptor chain " + id + " of queue " + queueName
                    + " is not in flight (used after addUsed?)");
        }
    }

    private void checkRange(long offset, long length, long total, String what) throws VirtqueueException {
        if (offset < 0 || length < 0 || offset > total || length > total - offset) {
            throw new VirtqueueException(VirtqueueException.Reason.BUFFER_TOO_SHORT, queueName, id,
                    what + " bytes=" + total + ", offset=" + offset + ", length=" + length);
        }
    }

    private VirtqueueException unmapped(IllegalStateException e) {
        VirtqueueException x = new VirtqueueException(VirtqueueException.Reason.MEMORY_UNMAPPED, queueName, id,
                e.getMessage() == null ? "" : "cause=" + e.getMessage());
        x.initCause(e);
        return x;
    }

    @Override
    public String toString() {
        return "DescriptorChain[queue=" + queueName + ", id=" + id + ", buffers=" + count + ", readable=" + totalReadable
                + ", writable=" + totalWritable + "]";
    }
}
