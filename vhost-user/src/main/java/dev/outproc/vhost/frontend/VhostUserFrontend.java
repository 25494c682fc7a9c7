package dev.outproc.vhost.frontend;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestMemoryException;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtqueue.DriverQueue;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.VhostUserFeature;

import java.io.IOException;
import java.nio.file.Path;
import java.util.function.IntConsumer;

/**
 * A vhost-user front-end: connects to any back-end's socket and drives it request by request, as a VMM
 * does. Tests, examples, benchmarks and the probe tool use it; it is also an API for Java VMMs.
 *
 * <p>Requests that have no reply of their own are sent with NEED_REPLY once REPLY_ACK is negotiated,
 * and a non-zero status becomes a {@link FrontendException}. One thread at a time drives a front-end.
 *
 * <p>The connection and its negotiation (features, SET_OWNER, RESET_DEVICE, status, raw access for tests)
 * live in the package-private layer this class extends; memory table, rings, IOTLB, configuration, inflight
 * and device state each have a request class of their own, to which the methods here delegate.
 *
 * <h2 id="errors">Errors</h2>
 * Every request throws {@link IOException} when the socket fails or the reply does not come within
 * {@linkplain #setReplyTimeoutMillis the reply timeout}, a
 * {@link dev.outproc.vhost.message.VhostUserProtocolException} when the reply is malformed or answers
 * another request, and a {@link FrontendException} (an {@code IOException} too) with the back-end's
 * status when the back-end refuses the request.
 *
 * {@snippet :
 * try (VhostUserFrontend fe = VhostUserFrontend.connect(Path.of("/run/vhost-blk.sock"))) {
 *     long acked = fe.negotiate(VirtioFeature.VERSION_1.mask(), ProtocolFeature.REPLY_ACK.mask());
 *     fe.setMemTable(memory);
 *     FrontendQueue queue = fe.startQueue(0, driverQueue, memory);
 *     // post chains on queue.queue(), then queue.publishAndKick() and queue.awaitCall(timeoutMillis)
 * }
 * }
 */
public final class VhostUserFrontend extends FrontendConnection implements AutoCloseable {
    /** A fresh packed ring's vring base: slot 0 with the wrap counter (bit 15) set. */
    private static final int PACKED_RING_START = 1 << 15;

    private final MemoryTableRequests memoryTable;
    private final RingRequests rings;
    private final IotlbRequests iotlb;
    private final ConfigRequests config;
    private final StateRequests state;
    private BackendChannelReader backendChannel;

    private VhostUserFrontend(MessageChannel channel) {
        super(channel);
        this.memoryTable = new MemoryTableRequests(io);
        this.rings = new RingRequests(io);
        this.iotlb = new IotlbRequests(io);
        this.config = new ConfigRequests(io);
        this.state = new StateRequests(io);
    }

    /**
     * Connects to a back-end's socket.
     *
     * @param socketPath the socket
     * @return the front-end
     * @throws IOException when the connection fails
     */
    public static VhostUserFrontend connect(Path socketPath) throws IOException {
        return new VhostUserFrontend(MessageChannel.connect(socketPath));
    }

    /**
     * Drives a back-end over an already connected channel.
     *
     * @param channel the channel (closed with the front-end)
     * @return the front-end
     */
    public static VhostUserFrontend over(MessageChannel channel) {
        return new VhostUserFrontend(channel);
    }

    // ---- memory ----

    /**
     * Shares guest memory with SET_MEM_TABLE; every region must keep its fd.
     *
     * @param memory 1 to 8 regions
     * @throws IOException when the request fails or is refused (see <a href="#errors">Errors</a>)
     */
    public void setMemTable(GuestMemory memory) throws IOException {
        memoryTable.setMemTable(memory);
    }

    /**
     * Adds one region (ADD_MEM_REG, CONFIGURE_MEM_SLOTS).
     *
     * @param region the region, with its fd
     * @throws IOException when the request fails or is refused (see <a href="#errors">Errors</a>)
     */
    public void addMemRegion(GuestRegion region) throws IOException {
        memoryTable.addMemRegion(region);
    }

    /**
     * Removes one region (REM_MEM_REG).
     *
     * @param region the region
     * @throws IOException when the request fails or is refused (see <a href="#errors">Errors</a>)
     */
    public void removeMemRegion(GuestRegion region) throws IOException {
        memoryTable.removeMemRegion(region);
    }

    /**
     * Shares the dirty log (SET_LOG_BASE, LOG_SHMFD); waits for the back-end's reply.
     *
     * @param fd the log's shared memory
     * @param sizeBytes the log's size
     * @param offset where it starts in the fd
     * @throws IOException when the request fails or is refused (see <a href="#errors">Errors</a>)
     */
    public void setLogBase(OwnedFd fd, long sizeBytes, long offset) throws IOException {
        memoryTable.setLogBase(fd, sizeBytes, offset);
    }

    // ---- rings ----

    /**
     * Sends SET_VRING_NUM.
     *
     * @param index ring
     * @param size descriptors
     * @throws IOException when the request fails or is refused (see <a href="#errors">Errors</a>)
     */
    public void setVringNum(int index, int size) throws IOException {
        rings.setVringNum(index, size);
    }

    /**
     * Sends SET_VRING_ADDR with front-end addresses.
     *
     * @param index ring
     * @param descUserAddr descriptor table
     * @param usedUserAddr used ring / device area
     * @param availUserAddr available ring / driver area
     * @param logUsed whether the back-end logs used-ring writes at {@code logGuestAddr}
     * @param logGuestAddr guest-physical address of the used ring, for the dirty log
     * @throws IOException when the request fails or is refused (see <a href="#errors">Errors</a>)
     */
    public void setVringAddr(int index, long descUserAddr, long usedUserAddr, long availUserAddr, boolean logUsed,
                             long logGuestAddr) throws IOException {
        rings.setVringAddr(index, descUserAddr, usedUserAddr, availUserAddr, logUsed, logGuestAddr);
    }

    /**
     * Sends SET_VRING_BASE.
     *
     * @param index ring
     * @param base next avail index (packed: the vring base word)
     * @throws IOException when the request fails or is refused (see <a href="#errors">Errors</a>)
     */
    public void setVringBase(int index, int base) throws IOException {
        rings.setVringBase(index, base);
    }

    /**
     * Stops a ring (GET_VRING_BASE).
     *
     * @param index ring
     * @return the vring base (split: next avail index; packed: the encoded word)
     * @throws IOException when the request fails (see <a href="#errors">Errors</a>)
     */
    public long getVringBase(int index) throws IOException {
        return rings.getVringBase(index);
    }

    /**
     * Sends SET_VRING_KICK (starts the ring).
     *
     * @param index ring
     * @param kick the eventfd, or {@code null} to have the back-end poll
     * @throws IOException when the request fails or is refused (see <a href="#errors">Errors</a>)
     */
    public void setVringKick(int index, EventFd kick) throws IOException {
        rings.setVringFd(FrontendRequest.SET_VRING_KICK, index, kick);
    }

    /**
     * Sends SET_VRING_CALL.
     *
     * @param index ring
     * @param call the eventfd, or {@code null} (in-band VRING_CALL when negotiated)
     * @throws IOException when the request fails or is refused (see <a href="#errors">Errors</a>)
     */
    public void setVringCall(int index, EventFd call) throws IOException {
        rings.setVringFd(FrontendRequest.SET_VRING_CALL, index, call);
    }

    /**
     * Sends SET_VRING_ERR.
     *
     * @param index ring
     * @param err the eventfd, or {@code null}
     * @throws IOException when the request fails or is refused (see <a href="#errors">Errors</a>)
     */
    public void setVringErr(int index, EventFd err) throws IOException {
        rings.setVringFd(FrontendRequest.SET_VRING_ERR, index, err);
    }

    /**
     * Sends SET_VRING_ENABLE.
     *
     * @param index ring
     * @param enabled the state
     * @throws IOException when the request fails or is refused (see <a href="#errors">Errors</a>)
     */
    public void setVringEnable(int index, boolean enabled) throws IOException {
        rings.setVringEnable(index, enabled);
    }

    /**
     * Kicks a ring in-band (VRING_KICK, INBAND_NOTIFICATIONS).
     *
     * @param index ring
     * @throws IOException when the request fails or is refused (see <a href="#errors">Errors</a>)
     */
    public void kickInband(int index) throws IOException {
        rings.kickInband(index);
    }

    /**
     * Programs a new ring from a driver-side queue and starts it at its beginning (split: index 0;
     * packed: slot 0 with the wrap counter set, as a fresh packed ring starts).
     *
     * @param index ring
     * @param queue the driver-side queue (its rings in {@code memory})
     * @param memory the memory shared with the back-end
     * @return the running ring with its kick and call eventfds
     * @throws IOException when a request fails or is refused (see <a href="#errors">Errors</a>)
     */
    public FrontendQueue startQueue(int index, DriverQueue queue, GuestMemory memory) throws IOException {
        boolean packed = (queue.config().features() & VirtioFeature.RING_PACKED.mask()) != 0;
        return startQueue(index, queue, memory, packed ? PACKED_RING_START : 0);
    }

    /**
     * Programs a ring from a driver-side queue in {@code memory} and starts it: NUM, ADDR, BASE, CALL,
     * KICK and, with F_PROTOCOL_FEATURES acknowledged, ENABLE. The eventfds are closed again when a request
     * fails.
     *
     * @param index ring
     * @param queue the driver-side queue (its rings in {@code memory})
     * @param memory the memory shared with the back-end
     * @param base the starting vring base (0 for a new ring)
     * @return the running ring with its kick and call eventfds
     * @throws IOException when a request fails or is refused (see <a href="#errors">Errors</a>)
     */
    public FrontendQueue startQueue(int index, DriverQueue queue, GuestMemory memory, int base) throws IOException {
        boolean enable = (features() & VhostUserFeature.PROTOCOL_FEATURES.mask()) != 0;
        return rings.start(this, index, queue, memory, base, enable);
    }

    /**
     * {@return the front-end address of a guest-physical address}
     *
     * @param memory the table
     * @param gpa the address
     * @throws GuestMemoryException when no region holds it
     */
    public static long userAddr(GuestMemory memory, long gpa) throws GuestMemoryException {
        return RingRequests.userAddr(memory, gpa);
    }

    // ---- IOTLB (VIRTIO_F_ACCESS_PLATFORM) ----

    /**
     * Maps an I/O virtual address range for the back-end (IOTLB_MSG update).
     *
     * @param iova start
     * @param size bytes
     * @param userAddr the front-end address it maps to
     * @param access 1 read, 2 write, 3 both
     * @throws IOException when the request fails or is refused (see <a href="#errors">Errors</a>)
     */
    public void iotlbUpdate(long iova, long size, long userAddr, int access) throws IOException {
        iotlb.update(iova, size, userAddr, access);
    }

    /**
     * Unmaps an I/O virtual address range (IOTLB_MSG invalidate).
     *
     * @param iova start
     * @param size bytes
     * @throws IOException when the request fails or is refused (see <a href="#errors">Errors</a>)
     */
    public void iotlbInvalidate(long iova, long size) throws IOException {
        iotlb.invalidate(iova, size);
    }

    // ---- config and status ----

    /**
     * Reads the configuration space (GET_CONFIG).
     *
     * @param offset first byte
     * @param size byte count (at most 256)
     * @return the bytes
     * @throws IOException when the request fails, or {@link FrontendException} when the back-end returned
     *         no data
     */
    public byte[] getConfig(int offset, int size) throws IOException {
        return config.getConfig(offset, size);
    }

    /**
     * Writes the configuration space (SET_CONFIG).
     *
     * @param offset first byte
     * @param data the bytes
     * @throws IOException when the request fails or is refused (see <a href="#errors">Errors</a>)
     */
    public void setConfig(int offset, byte[] data) throws IOException {
        config.setConfig(offset, data);
    }

    // ---- inflight and device state ----

    /**
     * An inflight log as GET_INFLIGHT_FD returns it; closing it closes the fd.
     *
     * @param fd the shared memory (owned by the caller)
     * @param mmapSize its size
     * @param mmapOffset its offset
     * @param numQueues queues it covers
     * @param queueSize descriptors per queue
     */
    public record Inflight(OwnedFd fd, long mmapSize, long mmapOffset, int numQueues, int queueSize) implements AutoCloseable {
        @Override
        public void close() {
            fd.close();
        }
    }

    /**
     * Asks the back-end for an inflight log (GET_INFLIGHT_FD).
     *
     * @param numQueues queues
     * @param queueSize descriptors per queue
     * @return the log, whose fd the caller keeps and hands back after a reconnect
     * @throws IOException when the request fails or the reply carries no fd (see <a href="#errors">Errors</a>)
     */
    public Inflight getInflightFd(int numQueues, int queueSize) throws IOException {
        return state.getInflightFd(numQueues, queueSize);
    }

    /**
     * Hands an inflight log to the back-end (SET_INFLIGHT_FD), as after a reconnect.
     *
     * @param inflight the log
     * @throws IOException when the request fails or is refused (see <a href="#errors">Errors</a>)
     */
    public void setInflightFd(Inflight inflight) throws IOException {
        state.setInflightFd(inflight);
    }

    /**
     * Starts a device-state transfer (SET_DEVICE_STATE_FD, phase stopped).
     *
     * @param save true to save (the back-end writes into {@code fd}), false to load (it reads)
     * @param fd one end of a pipe
     * @throws IOException when the request fails or the back-end answers a non-zero status
     */
    public void setDeviceStateFd(boolean save, OwnedFd fd) throws IOException {
        state.setDeviceStateFd(save, fd);
    }

    /**
     * {@return CHECK_DEVICE_STATE's result, 0 when the transfer succeeded}
     *
     * @throws IOException when the request fails (see <a href="#errors">Errors</a>)
     */
    public long checkDeviceState() throws IOException {
        return io.callU64(FrontendRequest.CHECK_DEVICE_STATE);
    }

    // ---- back-end channel ----

    /** Handles what a back-end sends on its channel. */
    public interface BackendRequestHandler {
        /** The configuration space changed. */
        default void configChanged() {
        }

        /**
         * In-band call for a ring.
         *
         * @param index the ring
         */
        default void vringCall(int index) {
        }

        /**
         * The back-end needs a translation (IOTLB_MSG miss): answer with {@link #iotlbUpdate} from the
         * thread that drives the front-end (this handler runs on the back-end channel's thread).
         *
         * @param iova the address that missed
         * @param access the access it needs
         */
        default void iotlbMiss(long iova, int access) {
        }
    }

    /**
     * Opens the back-end channel (SET_BACKEND_REQ_FD) and handles its requests on a thread of its own; a
     * channel opened before is closed, as the back-end replaces it too.
     *
     * @param handler receives the requests
     * @throws IOException when the request fails or is refused (see <a href="#errors">Errors</a>)
     */
    public void openBackendChannel(BackendRequestHandler handler) throws IOException {
        BackendChannelReader opened = BackendChannelReader.open(io, handler);
        if (backendChannel != null) {
            backendChannel.close();
        }
        backendChannel = opened;
    }

    /**
     * Runs a callback for each in-band VRING_CALL (shortcut for {@link #openBackendChannel(BackendRequestHandler)}).
     *
     * @param onCall receives the ring index
     * @throws IOException when the request fails or is refused (see <a href="#errors">Errors</a>)
     */
    public void openBackendChannel(IntConsumer onCall) throws IOException {
        openBackendChannel(new BackendRequestHandler() {
            @Override
            public void vringCall(int index) {
                onCall.accept(index);
            }
        });
    }

    /** Disconnects, and closes the back-end channel if one is open. */
    @Override
    public void close() {
        io.channel().close();
        if (backendChannel != null) {
            backendChannel.close();
        }
    }
}
