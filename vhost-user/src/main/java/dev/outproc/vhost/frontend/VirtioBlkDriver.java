package dev.outproc.vhost.frontend;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.virtqueue.DriverQueue;
import dev.outproc.core.virtqueue.GpaAllocator;
import dev.outproc.core.virtqueue.PackedDriverQueue;
import dev.outproc.core.virtqueue.QueueConfig;
import dev.outproc.core.virtqueue.SplitDriverQueue;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.core.virtio.VirtioFeature;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A virtio-blk driver over a {@link VhostUserFrontend}: the guest's side of a vhost-user-blk back-end,
 * with its own memfd guest memory. It negotiates, shares the memory, starts request queue 0 and issues
 * reads, writes, flushes, GET_ID, DISCARD and WRITE_ZEROES, up to {@code depth} requests in flight.
 * It drives any vhost-user-blk back-end (outproc's, qemu-storage-daemon, SPDK, ...).
 *
 * <p>Guest memory layout: the ring at the start, then one slot per request in flight, each with a
 * 16-byte header, a data area of {@code maxRequestBytes} and a status byte.
 */
public final class VirtioBlkDriver implements AutoCloseable {
    /** Read. */
    public static final int T_IN = 0;
    /** Write. */
    public static final int T_OUT = 1;
    /** Flush. */
    public static final int T_FLUSH = 4;
    /** Device id. */
    public static final int T_GET_ID = 8;
    /** Discard. */
    public static final int T_DISCARD = 11;
    /** Write zeroes. */
    public static final int T_WRITE_ZEROES = 13;
    /** Status: success. */
    public static final int S_OK = 0;

    private static final ValueLayout.OfInt LE_U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LE_U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final long GUEST_BASE = 0x1_0000_0000L;
    private static final long USER_BASE = 0x7e00_0000_0000L;
    private static final long BLK_FEATURES = (1L << 2) | (1L << 6) | (1L << 9) | (1L << 12) | (1L << 13) | (1L << 14) | (1L << 5);

    private final VhostUserFrontend frontend;
    private final GuestRegion region;
    private final GuestMemory memory;
    private final FrontendQueue queue;
    private final int depth;
    private final int maxRequestBytes;
    private final long[] slotGpa;
    private final long slotBytes;
    private final long acked;
    private final long timeoutMillis;
    private final int[] ids;
    private int busySlots;

    private VirtioBlkDriver(VhostUserFrontend frontend, GuestRegion region, GuestMemory memory, FrontendQueue queue,
                            int depth, int maxRequestBytes, long[] slotGpa, long slotBytes, long acked, long timeoutMillis) {
        this.frontend = frontend;
        this.region = region;
        this.memory = memory;
        this.queue = queue;
        this.depth = depth;
        this.maxRequestBytes = maxRequestBytes;
        this.slotGpa = slotGpa;
        this.slotBytes = slotBytes;
        this.acked = acked;
        this.timeoutMillis = timeoutMillis;
        this.ids = new int[depth];
        java.util.Arrays.fill(ids, -1);
    }

    /**
     * Sets up a back-end for block I/O: negotiates (EVENT_IDX, INDIRECT_DESC and the block features
     * when offered; packed rings when asked and offered), shares new guest memory, starts queue 0.
     *
     * @param frontend a connected front-end, not yet negotiated
     * @param depth requests in flight at most (1..queueSize)
     * @param maxRequestBytes largest data transfer of one request (a multiple of 512)
     * @param packed use a packed ring if the back-end offers it
     * @return the driver
     * @throws IOException when the back-end refuses
     */
    public static VirtioBlkDriver start(VhostUserFrontend frontend, int depth, int maxRequestBytes, boolean packed)
            throws IOException {
        if (maxRequestBytes <= 0 || maxRequestBytes % 512 != 0 || depth < 1 || depth > 256) {
            throw new IllegalArgumentException("maxRequestBytes must be a positive multiple of 512 and depth 1..256");
        }
        long wanted = VirtioFeature.maskOf(VirtioFeature.VERSION_1, VirtioFeature.EVENT_IDX, VirtioFeature.INDIRECT_DESC)
                | BLK_FEATURES | (packed ? VirtioFeature.RING_PACKED.mask() : 0);
        long wantedProtocol = ProtocolFeature.maskOf(ProtocolFeature.MQ, ProtocolFeature.REPLY_ACK, ProtocolFeature.CONFIG,
                ProtocolFeature.INFLIGHT_SHMFD, ProtocolFeature.DEVICE_STATE);
        long acked = frontend.negotiate(wanted, wantedProtocol);
        if ((acked & VirtioFeature.VERSION_1.mask()) == 0) {
            throw new FrontendException(0, "the back-end does not offer VIRTIO_F_VERSION_1");
        }
        int queueSize = 256;
        long slotBytes = align(16 + maxRequestBytes + 1, 4096);
        long memoryBytes = align(64 * 1024 + slotBytes * depth, 2 << 20);
        GuestRegion region = GuestRegion.allocate(GUEST_BASE, memoryBytes, USER_BASE);
        try {
            GuestMemory memory = GuestMemory.of(java.util.List.of(region));
            frontend.setMemTable(memory);
            GpaAllocator allocator = new GpaAllocator(GUEST_BASE, GUEST_BASE + memoryBytes);
            long queueFeatures = acked & (QueueConfig.F_EVENT_IDX | QueueConfig.F_INDIRECT_DESC | QueueConfig.F_RING_PACKED);
            DriverQueue dq = (acked & QueueConfig.F_RING_PACKED) != 0
                    ? PackedDriverQueue.allocate("blk-req-0", memory, allocator, queueSize, queueFeatures, 0)
                    : SplitDriverQueue.allocate("blk-req-0", memory, allocator, queueSize, queueFeatures, 0);
            long[] slots = new long[depth];
            for (int i = 0; i < depth; i++) {
                slots[i] = allocator.allocate(slotBytes, 4096);
            }
            FrontendQueue fq = frontend.startQueue(0, dq, memory);
            return new VirtioBlkDriver(frontend, region, memory, fq, depth, maxRequestBytes, slots, slotBytes, acked, 10_000);
        } catch (IOException | RuntimeException e) {
            region.close();
            throw e;
        }
    }

    private static long align(long value, long to) {
        return (value + to - 1) / to * to;
    }

    /** {@return the virtio features acknowledged} */
    public long features() {
        return acked;
    }

    /** {@return the front-end} */
    public VhostUserFrontend frontend() {
        return frontend;
    }

    /** {@return the guest memory the driver shares} */
    public GuestMemory memory() {
        return memory;
    }

    /** {@return the running ring} */
    public FrontendQueue queue() {
        return queue;
    }

    /** {@return the largest data transfer of one request} */
    public int maxRequestBytes() {
        return maxRequestBytes;
    }

    /** {@return requests in flight at most} */
    public int depth() {
        return depth;
    }

    /** {@return the capacity in 512-byte sectors, from the configuration space (GET_CONFIG)} @throws IOException on failure */
    public long capacitySectors() throws IOException {
        byte[] c = frontend.getConfig(0, 8);
        return MemorySegment.ofArray(c).get(LE_U64, 0);
    }

    /**
     * {@return the data area of a slot, to fill before {@link #submit} or read after completion}
     *
     * @param slot the slot (0..depth-1)
     */
    public MemorySegment data(int slot) {
        try {
            return memory.slice(slotGpa[slot] + 16, maxRequestBytes);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Posts one request in a slot (not yet published: call {@link #kick()}).
     *
     * @param slot the slot
     * @param type request type
     * @param sector first sector
     * @param dataBytes bytes of the slot's data area the request carries (0 for none)
     * @param deviceWrites whether the device writes the data (IN, GET_ID) or reads it (OUT, DISCARD...)
     * @throws IOException when the ring is full
     */
    public void submit(int slot, int type, long sector, int dataBytes, boolean deviceWrites) throws IOException {
        long gpa = slotGpa[slot];
        MemorySegment header = memory.slice(gpa, 16);
        header.set(LE_U32, 0, type);
        header.set(LE_U32, 4, 0);
        header.set(LE_U64, 8, sector);
        MemorySegment status = memory.slice(gpa + 16 + maxRequestBytes, 1);
        status.set(ValueLayout.JAVA_BYTE, 0, (byte) 0xff);
        DriverQueue q = queue.queue();
        q.add(gpa, 16, false);
        if (dataBytes > 0) {
            q.add(gpa + 16, dataBytes, deviceWrites);
        }
        q.add(gpa + 16 + maxRequestBytes, 1, true);
        int id = q.post(false);
        if (id < 0) {
            q.clearStaged();
            throw new IOException("ring full");
        }
        ids[slot] = id;
        busySlots++;
    }

    /** Publishes posted requests and kicks when needed. @throws IOException on failure */
    public void kick() throws IOException {
        queue.publishAndKick();
    }

    /**
     * Waits for one completion.
     *
     * @return the completed slot
     * @throws IOException on timeout or failure
     */
    public int awaitCompletion() throws IOException {
        DriverQueue q = queue.queue();
        long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
        while (true) {
            long used = q.pollUsed();
            if (used != DriverQueue.NONE) {
                int id = DriverQueue.usedId(used);
                for (int s = 0; s < depth; s++) {
                    if (ids[s] == id) {
                        ids[s] = -1;
                        busySlots--;
                        return s;
                    }
                }
                throw new IOException("back-end completed an id that is not in flight, id=" + id);
            }
            long wait = (deadline - System.nanoTime()) / 1_000_000L;
            if (wait <= 0) {
                throw new IOException("no completion within " + timeoutMillis + " ms");
            }
            if (q.enableUsedNotifications()) {
                continue;
            }
            queue.awaitCall(wait);
        }
    }

    /**
     * {@return the status byte of a completed slot}
     *
     * @param slot the slot
     */
    public int status(int slot) {
        try {
            return memory.slice(slotGpa[slot] + 16 + maxRequestBytes, 1).get(ValueLayout.JAVA_BYTE, 0) & 0xff;
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Runs one request to completion (depth 1 use).
     *
     * @return the status byte
     */
    private int run(int type, long sector, int dataBytes, boolean deviceWrites) throws IOException {
        submit(0, type, sector, dataBytes, deviceWrites);
        kick();
        int slot = awaitCompletion();
        return status(slot);
    }

    /**
     * Writes bytes at a sector.
     *
     * @param sector first sector
     * @param data a multiple of 512 bytes, at most {@link #maxRequestBytes()}
     * @return the status
     * @throws IOException on failure
     */
    public int write(long sector, byte[] data) throws IOException {
        MemorySegment.copy(data, 0, data(0), ValueLayout.JAVA_BYTE, 0, data.length);
        return run(T_OUT, sector, data.length, false);
    }

    /**
     * Reads bytes at a sector.
     *
     * @param sector first sector
     * @param into where the bytes go (its length is the transfer size)
     * @return the status
     * @throws IOException on failure
     */
    public int read(long sector, byte[] into) throws IOException {
        int status = run(T_IN, sector, into.length, true);
        MemorySegment.copy(data(0), ValueLayout.JAVA_BYTE, 0, into, 0, into.length);
        return status;
    }

    /** {@return the status of a FLUSH} @throws IOException on failure */
    public int flush() throws IOException {
        return run(T_FLUSH, 0, 0, false);
    }

    /** {@return the device id (GET_ID), trailing NULs removed} @throws IOException on failure */
    public String getId() throws IOException {
        int status = run(T_GET_ID, 0, 20, true);
        if (status != S_OK) {
            throw new FrontendException(status, "GET_ID failed, status=" + status);
        }
        byte[] id = data(0).asSlice(0, 20).toArray(ValueLayout.JAVA_BYTE);
        int n = 0;
        while (n < id.length && id[n] != 0) {
            n++;
        }
        return new String(id, 0, n, java.nio.charset.StandardCharsets.US_ASCII);
    }

    /**
     * DISCARD or WRITE_ZEROES of one range.
     *
     * @param type {@link #T_DISCARD} or {@link #T_WRITE_ZEROES}
     * @param sector first sector
     * @param sectors count
     * @return the status
     * @throws IOException on failure
     */
    public int zeroRange(int type, long sector, int sectors) throws IOException {
        MemorySegment d = data(0);
        d.set(LE_U64, 0, sector);
        d.set(LE_U32, 8, sectors);
        d.set(LE_U32, 12, 0);
        return run(type, 0, 16, false);
    }

    /** {@return requests in flight} */
    public int busySlots() {
        return busySlots;
    }

    /** Closes the ring's eventfds, the front-end and unmaps the guest memory. */
    @Override
    public void close() {
        queue.close();
        frontend.close();
        region.close();
    }
}
