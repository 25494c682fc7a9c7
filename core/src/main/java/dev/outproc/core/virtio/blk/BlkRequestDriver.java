package dev.outproc.core.virtio.blk;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.virtqueue.DriverQueue;
import dev.outproc.core.virtqueue.GpaAllocator;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The driver side of one virtio-blk request queue (VIRTIO 1.2 §5.2.6), whatever transport carries it:
 * request slots in guest memory, requests posted on a {@link DriverQueue}, completions matched back to
 * their slot. A transport binding supplies the queue and its {@link Doorbell} (vhost-user's
 * {@code VirtioBlkDriver}; a virtio-pci binding would ring its notify register and wait for its
 * interrupt the same way).
 *
 * <p>Each slot holds one request: a 16-byte header, a data area of {@code maxRequestBytes} and a status
 * byte, in guest memory the device reads and writes:
 * <pre>
 * slot: 0 header (16, device-readable) | 16 data (maxRequestBytes) | 16 + maxRequestBytes status u8 (device-writable)
 * </pre>
 *
 * <p>Not thread-safe: one thread drives the queue. Values the device writes are checked: a completion of
 * an id that is not in flight is an {@link IOException}.
 */
public final class BlkRequestDriver {
    private static final ValueLayout.OfInt LE_U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LE_U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Status byte value before the device answers, so that an unanswered request is visible. */
    private static final byte STATUS_UNANSWERED = (byte) 0xff;

    /** How the transport publishes requests and waits for the device's notification. */
    public interface Doorbell {
        /**
         * Publishes the posted chains and notifies the device when its suppression rules ask for it.
         *
         * @throws IOException when the notification fails
         */
        void publishAndKick() throws IOException;

        /**
         * Waits for the device's used-buffer notification.
         *
         * @param timeoutMillis how long at most
         * @throws IOException when none came in time or the wait fails
         */
        void awaitNotification(long timeoutMillis) throws IOException;
    }

    private final GuestMemory memory;
    private final DriverQueue queue;
    private final Doorbell doorbell;
    private final int maxRequestBytes;
    private final long[] slotGpa;
    private final int[] ids;
    private final long timeoutMillis;
    private int busySlots;

    /**
     * Creates the driver and allocates its slots.
     *
     * @param memory the guest memory the queue and slots live in
     * @param allocator where to take the slots from (in {@code memory})
     * @param queue the request queue, already started by the transport
     * @param doorbell the transport's notifications for {@code queue}
     * @param depth slots, that is requests in flight at most (1..256)
     * @param maxRequestBytes largest data transfer of one request, a positive multiple of 512
     * @param timeoutMillis how long {@link #awaitCompletion()} waits
     */
    public BlkRequestDriver(GuestMemory memory, GpaAllocator allocator, DriverQueue queue, Doorbell doorbell,
                            int depth, int maxRequestBytes, long timeoutMillis) {
        checkSizes(depth, maxRequestBytes);
        this.memory = memory;
        this.queue = queue;
        this.doorbell = doorbell;
        this.maxRequestBytes = maxRequestBytes;
        this.timeoutMillis = timeoutMillis;
        this.slotGpa = new long[depth];
        long slotBytes = slotBytes(maxRequestBytes);
        for (int i = 0; i < depth; i++) {
            slotGpa[i] = allocator.allocate(slotBytes, 4096);
        }
        this.ids = new int[depth];
        Arrays.fill(ids, -1);
    }

    /**
     * Checks the sizes a driver is created with.
     *
     * @param depth requests in flight at most
     * @param maxRequestBytes largest data transfer
     * @throws IllegalArgumentException when out of range
     */
    public static void checkSizes(int depth, int maxRequestBytes) {
        if (maxRequestBytes <= 0 || maxRequestBytes % VirtioBlk.SECTOR_SIZE != 0 || depth < 1 || depth > 256) {
            throw new IllegalArgumentException("maxRequestBytes must be a positive multiple of 512 and depth 1..256, maxRequestBytes="
                    + maxRequestBytes + " depth=" + depth);
        }
    }

    /**
     * {@return the guest memory one slot takes (page-aligned)}
     *
     * @param maxRequestBytes largest data transfer of one request
     */
    public static long slotBytes(int maxRequestBytes) {
        long bytes = VirtioBlk.HEADER_SIZE + (long) maxRequestBytes + 1;
        return (bytes + 4095) / 4096 * 4096;
    }

    /** {@return the request queue} */
    public DriverQueue queue() {
        return queue;
    }

    /** {@return the largest data transfer of one request} */
    public int maxRequestBytes() {
        return maxRequestBytes;
    }

    /** {@return requests in flight at most} */
    public int depth() {
        return slotGpa.length;
    }

    /** {@return requests in flight} */
    public int busySlots() {
        return busySlots;
    }

    /**
     * {@return the data area of a slot, to fill before {@link #submit} or read after completion}
     *
     * @param slot the slot (0..depth-1)
     */
    public MemorySegment data(int slot) {
        return slice(slotGpa[slot] + VirtioBlk.HEADER_SIZE, maxRequestBytes);
    }

    private MemorySegment slice(long gpa, long bytes) {
        try {
            return memory.slice(gpa, bytes);
        } catch (IOException e) {
            // The slots were allocated inside this memory: a failure is a bug here, not the device's doing.
            throw new IllegalStateException("slot outside guest memory, gpa=0x" + Long.toHexString(gpa), e);
        }
    }

    /**
     * Posts one request in a slot (not yet published: call {@link #kick()}).
     *
     * @param slot the slot
     * @param type request type ({@link VirtioBlk#T_IN}, ...)
     * @param sector first sector
     * @param dataBytes bytes of the slot's data area the request carries (0 for none)
     * @param deviceWrites whether the device writes the data (IN, GET_ID) or reads it (OUT, DISCARD, ...)
     * @throws IOException when the ring is full
     */
    public void submit(int slot, int type, long sector, int dataBytes, boolean deviceWrites) throws IOException {
        if (dataBytes < 0 || dataBytes > maxRequestBytes) {
            throw new IllegalArgumentException("dataBytes must be 0.." + maxRequestBytes + ", dataBytes=" + dataBytes);
        }
        long gpa = slotGpa[slot];
        MemorySegment header = slice(gpa, VirtioBlk.HEADER_SIZE);
        header.set(LE_U32, VirtioBlk.HEADER_TYPE_OFFSET, type);
        header.set(LE_U32, VirtioBlk.HEADER_RESERVED_OFFSET, 0);
        header.set(LE_U64, VirtioBlk.HEADER_SECTOR_OFFSET, sector);
        long statusGpa = gpa + VirtioBlk.HEADER_SIZE + maxRequestBytes;
        slice(statusGpa, 1).set(ValueLayout.JAVA_BYTE, 0, STATUS_UNANSWERED);
        queue.add(gpa, VirtioBlk.HEADER_SIZE, false);
        if (dataBytes > 0) {
            queue.add(gpa + VirtioBlk.HEADER_SIZE, dataBytes, deviceWrites);
        }
        queue.add(statusGpa, 1, true);
        int id = queue.post(false);
        if (id < 0) {
            queue.clearStaged();
            throw new IOException("ring full, slot=" + slot + " inFlight=" + queue.inFlightCount());
        }
        ids[slot] = id;
        busySlots++;
    }

    /**
     * Publishes posted requests and notifies the device when needed.
     *
     * @throws IOException when the notification fails
     */
    public void kick() throws IOException {
        doorbell.publishAndKick();
    }

    /**
     * Waits for one completion.
     *
     * @return the completed slot
     * @throws IOException on timeout, a failed wait, or a completion the driver did not ask for
     */
    public int awaitCompletion() throws IOException {
        long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
        while (true) {
            long used = queue.pollUsed();
            if (used != DriverQueue.NONE) {
                int id = DriverQueue.usedId(used);
                for (int s = 0; s < ids.length; s++) {
                    if (ids[s] == id) {
                        ids[s] = -1;
                        busySlots--;
                        return s;
                    }
                }
                throw new IOException("device completed an id that is not in flight, id=" + id);
            }
            long waitMillis = (deadline - System.nanoTime()) / 1_000_000L;
            if (waitMillis <= 0) {
                throw new IOException("no completion within " + timeoutMillis + " ms");
            }
            if (queue.enableUsedNotifications()) {
                continue;
            }
            doorbell.awaitNotification(waitMillis);
        }
    }

    /**
     * {@return the status byte of a completed slot ({@link VirtioBlk#S_OK}, ...; 0xff when unanswered)}
     *
     * @param slot the slot
     */
    public int status(int slot) {
        return slice(slotGpa[slot] + VirtioBlk.HEADER_SIZE + maxRequestBytes, 1).get(ValueLayout.JAVA_BYTE, 0) & 0xff;
    }

    /** Runs one request in slot 0 to completion (depth-1 use) and returns its status. */
    private int run(int type, long sector, int dataBytes, boolean deviceWrites) throws IOException {
        submit(0, type, sector, dataBytes, deviceWrites);
        kick();
        return status(awaitCompletion());
    }

    /**
     * Writes bytes at a sector.
     *
     * @param sector first sector
     * @param data at most {@link #maxRequestBytes()} bytes (a device refuses what is not a multiple of 512)
     * @return the status
     * @throws IOException when the request cannot be run
     */
    public int write(long sector, byte[] data) throws IOException {
        MemorySegment.copy(data, 0, data(0), ValueLayout.JAVA_BYTE, 0, data.length);
        return run(VirtioBlk.T_OUT, sector, data.length, false);
    }

    /**
     * Reads bytes at a sector.
     *
     * @param sector first sector
     * @param into where the bytes go (its length is the transfer size)
     * @return the status
     * @throws IOException when the request cannot be run
     */
    public int read(long sector, byte[] into) throws IOException {
        int status = run(VirtioBlk.T_IN, sector, into.length, true);
        MemorySegment.copy(data(0), ValueLayout.JAVA_BYTE, 0, into, 0, into.length);
        return status;
    }

    /**
     * Runs a FLUSH.
     *
     * @return the status
     * @throws IOException when the request cannot be run
     */
    public int flush() throws IOException {
        return run(VirtioBlk.T_FLUSH, 0, 0, false);
    }

    /**
     * Runs GET_ID.
     *
     * @return the device id, trailing NULs removed
     * @throws IOException when the request cannot be run or the device answers with an error status
     */
    public String getId() throws IOException {
        // A shorter id is NUL-terminated (§5.2.6); zeroing first also ends one from a device that forgets.
        data(0).asSlice(0, VirtioBlk.ID_BYTES).fill((byte) 0);
        int status = run(VirtioBlk.T_GET_ID, 0, VirtioBlk.ID_BYTES, true);
        if (status != VirtioBlk.S_OK) {
            throw new IOException("GET_ID failed, status=" + status);
        }
        byte[] id = data(0).asSlice(0, VirtioBlk.ID_BYTES).toArray(ValueLayout.JAVA_BYTE);
        int n = 0;
        while (n < id.length && id[n] != 0) {
            n++;
        }
        return new String(id, 0, n, StandardCharsets.US_ASCII);
    }

    /**
     * Runs a DISCARD or WRITE_ZEROES of one range (one segment, no unmap).
     *
     * @param type {@link VirtioBlk#T_DISCARD} or {@link VirtioBlk#T_WRITE_ZEROES}
     * @param sector first sector
     * @param sectors count
     * @return the status
     * @throws IOException when the request cannot be run
     */
    public int zeroRange(int type, long sector, int sectors) throws IOException {
        MemorySegment segment = data(0);
        segment.set(LE_U64, VirtioBlk.SEGMENT_SECTOR_OFFSET, sector);
        segment.set(LE_U32, VirtioBlk.SEGMENT_NUM_SECTORS_OFFSET, sectors);
        segment.set(LE_U32, VirtioBlk.SEGMENT_FLAGS_OFFSET, 0);
        return run(type, 0, VirtioBlk.SEGMENT_SIZE, false);
    }
}
