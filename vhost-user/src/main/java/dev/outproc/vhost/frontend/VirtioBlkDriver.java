package dev.outproc.vhost.frontend;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtio.blk.BlkRequestDriver;
import dev.outproc.core.virtio.blk.VirtioBlk;
import dev.outproc.core.virtqueue.DriverQueue;
import dev.outproc.core.virtqueue.GpaAllocator;
import dev.outproc.core.virtqueue.PackedDriverQueue;
import dev.outproc.core.virtqueue.QueueConfig;
import dev.outproc.core.virtqueue.SplitDriverQueue;
import dev.outproc.vhost.message.ProtocolFeature;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;

/**
 * A virtio-blk driver over a {@link VhostUserFrontend}: the guest's side of a vhost-user-blk back-end,
 * with its own memfd guest memory. This class is the vhost-user binding only (negotiation, memory
 * table, starting request queue 0, GET_CONFIG); the requests themselves (READ, WRITE, FLUSH, GET_ID,
 * DISCARD, WRITE_ZEROES, up to {@code depth} in flight) are core's transport-neutral
 * {@link BlkRequestDriver}, which every method here delegates to. It drives any vhost-user-blk back-end
 * (outproc's, qemu-storage-daemon, SPDK, ...).
 *
 * <p>Guest memory layout: the ring at the start, then the request slots {@link BlkRequestDriver} describes.
 */
public final class VirtioBlkDriver implements AutoCloseable {
    /** Read ({@link VirtioBlk#T_IN}). */
    public static final int T_IN = VirtioBlk.T_IN;
    /** Write ({@link VirtioBlk#T_OUT}). */
    public static final int T_OUT = VirtioBlk.T_OUT;
    /** Flush ({@link VirtioBlk#T_FLUSH}). */
    public static final int T_FLUSH = VirtioBlk.T_FLUSH;
    /** Device id ({@link VirtioBlk#T_GET_ID}). */
    public static final int T_GET_ID = VirtioBlk.T_GET_ID;
    /** Discard ({@link VirtioBlk#T_DISCARD}). */
    public static final int T_DISCARD = VirtioBlk.T_DISCARD;
    /** Write zeroes ({@link VirtioBlk#T_WRITE_ZEROES}). */
    public static final int T_WRITE_ZEROES = VirtioBlk.T_WRITE_ZEROES;
    /** Status: success ({@link VirtioBlk#S_OK}). */
    public static final int S_OK = VirtioBlk.S_OK;

    private static final ValueLayout.OfLong LE_U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final long GUEST_BASE = 0x1_0000_0000L;
    private static final long USER_BASE = 0x7e00_0000_0000L;
    private static final int QUEUE_SIZE = 256;
    private static final long TIMEOUT_MILLIS = 10_000;
    /** The block features the driver understands. */
    private static final long BLK_FEATURES = bit(VirtioBlk.F_SEG_MAX) | bit(VirtioBlk.F_RO) | bit(VirtioBlk.F_BLK_SIZE)
            | bit(VirtioBlk.F_FLUSH) | bit(VirtioBlk.F_MQ) | bit(VirtioBlk.F_DISCARD) | bit(VirtioBlk.F_WRITE_ZEROES);

    private final VhostUserFrontend frontend;
    private final GuestRegion region;
    private final GuestMemory memory;
    private final FrontendQueue queue;
    private final BlkRequestDriver requests;
    private final long acked;

    private VirtioBlkDriver(VhostUserFrontend frontend, GuestRegion region, GuestMemory memory, FrontendQueue queue,
                            BlkRequestDriver requests, long acked) {
        this.frontend = frontend;
        this.region = region;
        this.memory = memory;
        this.queue = queue;
        this.requests = requests;
        this.acked = acked;
    }

    private static long bit(int n) {
        return 1L << n;
    }

    /**
     * Sets up a back-end for block I/O: negotiates (EVENT_IDX, INDIRECT_DESC and the block features
     * when offered; packed rings when asked and offered), shares new guest memory, starts queue 0.
     *
     * @param frontend a connected front-end, not yet negotiated
     * @param depth requests in flight at most (1..256)
     * @param maxRequestBytes largest data transfer of one request (a multiple of 512)
     * @param packed use a packed ring if the back-end offers it
     * @return the driver
     * @throws IOException when the back-end refuses
     */
    public static VirtioBlkDriver start(VhostUserFrontend frontend, int depth, int maxRequestBytes, boolean packed)
            throws IOException {
        BlkRequestDriver.checkSizes(depth, maxRequestBytes);
        long wanted = VirtioFeature.maskOf(VirtioFeature.VERSION_1, VirtioFeature.EVENT_IDX, VirtioFeature.INDIRECT_DESC)
                | BLK_FEATURES | (packed ? VirtioFeature.RING_PACKED.mask() : 0);
        long wantedProtocol = ProtocolFeature.maskOf(ProtocolFeature.MQ, ProtocolFeature.REPLY_ACK, ProtocolFeature.CONFIG,
                ProtocolFeature.INFLIGHT_SHMFD, ProtocolFeature.DEVICE_STATE);
        long acked = frontend.negotiate(wanted, wantedProtocol);
        if ((acked & VirtioFeature.VERSION_1.mask()) == 0) {
            throw new FrontendException(0, "the back-end does not offer VIRTIO_F_VERSION_1");
        }
        long memoryBytes = align(64 * 1024 + BlkRequestDriver.slotBytes(maxRequestBytes) * depth, 2 << 20);
        GuestRegion region = GuestRegion.allocate(GUEST_BASE, memoryBytes, USER_BASE);
        try {
            GuestMemory memory = GuestMemory.of(List.of(region));
            frontend.setMemTable(memory);
            GpaAllocator allocator = new GpaAllocator(GUEST_BASE, GUEST_BASE + memoryBytes);
            long queueFeatures = acked & (QueueConfig.F_EVENT_IDX | QueueConfig.F_INDIRECT_DESC | QueueConfig.F_RING_PACKED);
            DriverQueue dq = (acked & QueueConfig.F_RING_PACKED) != 0
                    ? PackedDriverQueue.allocate("blk-req-0", memory, allocator, QUEUE_SIZE, queueFeatures, 0)
                    : SplitDriverQueue.allocate("blk-req-0", memory, allocator, QUEUE_SIZE, queueFeatures, 0);
            FrontendQueue fq = frontend.startQueue(0, dq, memory);
            BlkRequestDriver requests = new BlkRequestDriver(memory, allocator, dq, doorbell(fq), depth,
                    maxRequestBytes, TIMEOUT_MILLIS);
            return new VirtioBlkDriver(frontend, region, memory, fq, requests, acked);
        } catch (IOException | RuntimeException e) {
            region.close();
            throw e;
        }
    }

    /** The vhost-user doorbell: the kick eventfd out, the call eventfd in. */
    private static BlkRequestDriver.Doorbell doorbell(FrontendQueue queue) {
        return new BlkRequestDriver.Doorbell() {
            @Override
            public void publishAndKick() throws IOException {
                queue.publishAndKick();
            }

            @Override
            public void awaitNotification(long timeoutMillis) throws IOException {
                queue.awaitCall(timeoutMillis);
            }
        };
    }

    private static long align(long value, long to) {
        return (value + to - 1) / to * to;
    }

    /** {@return the transport-neutral request logic this driver delegates to} */
    public BlkRequestDriver requests() {
        return requests;
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
        return requests.maxRequestBytes();
    }

    /** {@return requests in flight at most} */
    public int depth() {
        return requests.depth();
    }

    /**
     * {@return the capacity in 512-byte sectors, from the configuration space (GET_CONFIG)}
     *
     * @throws IOException when GET_CONFIG fails
     */
    public long capacitySectors() throws IOException {
        byte[] config = frontend.getConfig(VirtioBlk.CONFIG_CAPACITY_OFFSET, 8);
        return MemorySegment.ofArray(config).get(LE_U64, 0);
    }

    /**
     * {@return the data area of a slot, to fill before {@link #submit} or read after completion}
     *
     * @param slot the slot (0..depth-1)
     */
    public MemorySegment data(int slot) {
        return requests.data(slot);
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
        requests.submit(slot, type, sector, dataBytes, deviceWrites);
    }

    /**
     * Publishes posted requests and kicks when needed.
     *
     * @throws IOException when the kick fails
     */
    public void kick() throws IOException {
        requests.kick();
    }

    /**
     * Waits for one completion.
     *
     * @return the completed slot
     * @throws IOException on timeout or failure
     */
    public int awaitCompletion() throws IOException {
        return requests.awaitCompletion();
    }

    /**
     * {@return the status byte of a completed slot}
     *
     * @param slot the slot
     */
    public int status(int slot) {
        return requests.status(slot);
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
        return requests.write(sector, data);
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
        return requests.read(sector, into);
    }

    /**
     * Runs a FLUSH.
     *
     * @return the status
     * @throws IOException on failure
     */
    public int flush() throws IOException {
        return requests.flush();
    }

    /**
     * Runs GET_ID.
     *
     * @return the device id, trailing NULs removed
     * @throws IOException on failure or an error status
     */
    public String getId() throws IOException {
        return requests.getId();
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
        return requests.zeroRange(type, sector, sectors);
    }

    /** {@return requests in flight} */
    public int busySlots() {
        return requests.busySlots();
    }

    /** Closes the ring's eventfds, the front-end and unmaps the guest memory. */
    @Override
    public void close() {
        queue.close();
        frontend.close();
        region.close();
    }
}
