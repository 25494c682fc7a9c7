package dev.outproc.vhost.frontend;

import dev.outproc.vhost.message.VhostUserFeature;
import dev.outproc.core.event.EventFd;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestMemoryException;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.core.virtqueue.DriverQueue;
import dev.outproc.core.virtqueue.QueueConfig;
import dev.outproc.vhost.connection.VhostUserMessage;
import dev.outproc.vhost.connection.VhostUserMessageReader;
import dev.outproc.vhost.connection.VhostUserMessageWriter;
import dev.outproc.vhost.message.ConfigSpace;
import dev.outproc.vhost.message.DeviceStateTransfer;
import dev.outproc.vhost.message.InflightDescription;
import dev.outproc.vhost.message.IotlbMsg;
import dev.outproc.vhost.message.LogDescription;
import dev.outproc.vhost.message.MemTable;
import dev.outproc.vhost.message.MemoryRegion;
import dev.outproc.vhost.message.SingleMemRegion;
import dev.outproc.vhost.message.U64Payload;
import dev.outproc.vhost.message.VringAddr;
import dev.outproc.vhost.message.VringState;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.vhost.message.VringFdIndex;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntConsumer;


/**
 * A vhost-user front-end: connects to any back-end's socket and drives it request by request, as a VMM
 * does. Tests, examples, benchmarks and the probe tool use it; it is also an API for Java VMMs.
 *
 * <p>Requests that have no reply of their own are sent with NEED_REPLY once REPLY_ACK is negotiated,
 * and a non-zero status becomes a {@link FrontendException}. One thread at a time drives a front-end.
 *
 * {@snippet :
 * try (VhostUserFrontend fe = VhostUserFrontend.connect(Path.of("/run/vhost-blk.sock"))) {
 *     long features = fe.getFeatures();
 *     fe.setOwner();
 *     fe.negotiate(features, fe.getProtocolFeatures());
 *     // ... setMemTable, startQueue, I/O ...
 * }
 * }
 */
public final class VhostUserFrontend implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VhostUserFrontend.class.getName());

    private final RequestChannel io;
    private long features;
    private long protocolFeatures;
    private BackendChannelReader backendChannel;
    private final VringState.Decoder vringStateReply = new VringState.Decoder();
    private final VringAddr.Encoder vringAddr = new VringAddr.Encoder();
    private final MemTable.Encoder memTable = new MemTable.Encoder();
    private final SingleMemRegion.Encoder singleRegion = new SingleMemRegion.Encoder();
    private final LogDescription.Encoder logDescription = new LogDescription.Encoder();
    private final IotlbMsg.Encoder iotlbMsg = new IotlbMsg.Encoder();
    private final ConfigSpace.Encoder configRequest = new ConfigSpace.Encoder();
    private final ConfigSpace.Decoder configReply = new ConfigSpace.Decoder();
    private final InflightDescription.Encoder inflightRequest = new InflightDescription.Encoder();
    private final InflightDescription.Decoder inflightReply = new InflightDescription.Decoder();
    private final DeviceStateTransfer.Encoder deviceState = new DeviceStateTransfer.Encoder();

    private VhostUserFrontend(MessageChannel channel) {
        this.io = new RequestChannel(channel);
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

    /**
     * Sets how long to wait for any reply; 0 waits forever.
     *
     * @param timeoutMillis the timeout
     * @throws IOException when the socket refuses
     */
    public void setReplyTimeoutMillis(int timeoutMillis) throws IOException {
        io.channel().setReadTimeoutMillis(timeoutMillis);
    }

    /** {@return the virtio features acknowledged with {@link #setFeatures}} */
    public long features() {
        return features;
    }

    /** {@return the protocol features acknowledged with {@link #setProtocolFeatures}} */
    public long protocolFeatures() {
        return protocolFeatures;
    }

    /**
     * {@return whether a protocol feature was acknowledged}
     *
     * @param f the feature
     */
    public boolean has(ProtocolFeature f) {
        return (protocolFeatures & f.mask()) != 0;
    }

    // ---- negotiation ----

    /**
     * {@return the back-end's virtio features}
     *
     * @throws IOException on failure
     */
    public long getFeatures() throws IOException {
        return io.callU64(FrontendRequest.GET_FEATURES);
    }

    /**
     * Acknowledges virtio features.
     *
     * @param value the features
     * @throws IOException on failure
     */
    public void setFeatures(long value) throws IOException {
        io.sendU64(FrontendRequest.SET_FEATURES, value);
        features = value;
    }

    /**
     * {@return the back-end's protocol features}
     *
     * @throws IOException on failure
     */
    public long getProtocolFeatures() throws IOException {
        return io.callU64(FrontendRequest.GET_PROTOCOL_FEATURES);
    }

    /**
     * Acknowledges protocol features.
     *
     * @param value the features
     * @throws IOException on failure
     */
    public void setProtocolFeatures(long value) throws IOException {
        // Sent before REPLY_ACK takes effect: the ack mode starts with the next request.
        io.encodeU64(value);
        io.sendWithoutAck(FrontendRequest.SET_PROTOCOL_FEATURES, U64Payload.ENCODED_LENGTH);
        protocolFeatures = value;
        io.replyAck(has(ProtocolFeature.REPLY_ACK));
    }

    /**
     * The usual opening: SET_OWNER, then the protocol features (when the back-end offers
     * F_PROTOCOL_FEATURES) and the virtio features, each the intersection of what is wanted and offered.
     *
     * @param wantedFeatures virtio features to use (F_PROTOCOL_FEATURES is added when offered)
     * @param wantedProtocolFeatures protocol features to use
     * @return the virtio features acknowledged
     * @throws IOException on failure
     */
    public long negotiate(long wantedFeatures, long wantedProtocolFeatures) throws IOException {
        long offered = getFeatures();
        setOwner();
        long protocolBit = VhostUserFeature.PROTOCOL_FEATURES.mask();
        if ((offered & protocolBit) != 0) {
            long offeredProtocol = getProtocolFeatures();
            setProtocolFeatures(offeredProtocol & wantedProtocolFeatures);
        }
        long acked = offered & (wantedFeatures | protocolBit);
        setFeatures(acked);
        return acked;
    }

    /**
     * Sends SET_OWNER.
     *
     * @throws IOException on failure
     */
    public void setOwner() throws IOException {
        io.send(FrontendRequest.SET_OWNER, 0, List.of());
    }

    /**
     * Sends RESET_DEVICE.
     *
     * @throws IOException on failure
     */
    public void resetDevice() throws IOException {
        io.send(FrontendRequest.RESET_DEVICE, 0, List.of());
    }

    /**
     * {@return the back-end's queue count (MQ)}
     *
     * @throws IOException on failure
     */
    public int getQueueNum() throws IOException {
        return (int) io.callU64(FrontendRequest.GET_QUEUE_NUM);
    }

    /**
     * {@return the back-end's memory slot count (CONFIGURE_MEM_SLOTS)}
     *
     * @throws IOException on failure
     */
    public int getMaxMemSlots() throws IOException {
        return (int) io.callU64(FrontendRequest.GET_MAX_MEM_SLOTS);
    }

    // ---- memory ----

    /**
     * Shares guest memory with SET_MEM_TABLE; every region must keep its fd.
     *
     * @param memory up to 8 regions
     * @throws IOException on failure
     */
    public void setMemTable(GuestMemory memory) throws IOException {
        List<GuestRegion> regions = memory.regions();
        if (regions.isEmpty() || regions.size() > 8) {
            throw new IllegalArgumentException("SET_MEM_TABLE carries 1..8 regions, regions=" + regions.size());
        }
        int size = MemTable.encodedLength(regions.size());
        memTable.wrap(io.body(size), 0).nregions(regions.size());
        List<OwnedFd> fds = new ArrayList<>();
        for (int i = 0; i < regions.size(); i++) {
            GuestRegion r = regions.get(i);
            encodeRegion(memTable.region(i), r);
            fds.add(requireFd(r));
        }
        io.send(FrontendRequest.SET_MEM_TABLE, size, fds);
    }

    private static OwnedFd requireFd(GuestRegion r) {
        if (r.fd() == null) {
            throw new IllegalArgumentException("region has no fd to share: " + r);
        }
        return r.fd();
    }

    private static void encodeRegion(MemoryRegion.Encoder region, GuestRegion r) {
        region.guestPhysAddr(r.guestPhysAddr()).memorySize(r.sizeBytes()).userAddr(r.userAddr()).mmapOffset(r.mmapOffset());
    }

    private int encodeSingleRegion(GuestRegion region) {
        encodeRegion(singleRegion.wrap(io.body(SingleMemRegion.ENCODED_LENGTH), 0).region(), region);
        return SingleMemRegion.ENCODED_LENGTH;
    }

    /**
     * Adds one region (ADD_MEM_REG, CONFIGURE_MEM_SLOTS).
     *
     * @param region the region, with its fd
     * @throws IOException on failure
     */
    public void addMemRegion(GuestRegion region) throws IOException {
        io.send(FrontendRequest.ADD_MEM_REG, encodeSingleRegion(region), List.of(requireFd(region)));
    }

    /**
     * Removes one region (REM_MEM_REG).
     *
     * @param region the region
     * @throws IOException on failure
     */
    public void removeMemRegion(GuestRegion region) throws IOException {
        io.send(FrontendRequest.REM_MEM_REG, encodeSingleRegion(region), List.of());
    }

    /**
     * Shares the dirty log (SET_LOG_BASE, LOG_SHMFD); waits for the back-end's reply.
     *
     * @param fd the log's shared memory
     * @param sizeBytes the log's size
     * @param offset where it starts in the fd
     * @throws IOException on failure
     */
    public void setLogBase(OwnedFd fd, long sizeBytes, long offset) throws IOException {
        logDescription.wrap(io.body(LogDescription.ENCODED_LENGTH), 0).mmapSize(sizeBytes).mmapOffset(offset);
        try (VhostUserMessage m = io.call(FrontendRequest.SET_LOG_BASE, LogDescription.ENCODED_LENGTH, List.of(fd))) {
            if (m.payloadU64() != 0) {
                throw new FrontendException(m.payloadU64(), "SET_LOG_BASE refused");
            }
        }
    }

    // ---- rings ----

    /**
     * Sends SET_VRING_NUM.
     *
     * @param index ring
     * @param size descriptors
     * @throws IOException on failure
     */
    public void setVringNum(int index, int size) throws IOException {
        io.sendState(FrontendRequest.SET_VRING_NUM, index, size);
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
     * @throws IOException on failure
     */
    public void setVringAddr(int index, long descUserAddr, long usedUserAddr, long availUserAddr, boolean logUsed,
                             long logGuestAddr) throws IOException {
        vringAddr.wrap(io.body(VringAddr.ENCODED_LENGTH), 0).index(index).flags(logUsed ? VringAddr.F_LOG : 0)
                .descUserAddr(descUserAddr).usedUserAddr(usedUserAddr).availUserAddr(availUserAddr)
                .logGuestAddr(logGuestAddr);
        io.send(FrontendRequest.SET_VRING_ADDR, VringAddr.ENCODED_LENGTH, List.of());
    }

    /**
     * Sends SET_VRING_BASE.
     *
     * @param index ring
     * @param base next avail index (packed: the vring base word)
     * @throws IOException on failure
     */
    public void setVringBase(int index, int base) throws IOException {
        io.sendState(FrontendRequest.SET_VRING_BASE, index, base);
    }

    /**
     * Stops a ring (GET_VRING_BASE).
     *
     * @param index ring
     * @return the vring base (split: next avail index; packed: the encoded word)
     * @throws IOException on failure
     */
    public long getVringBase(int index) throws IOException {
        io.encodeState(index, 0);
        try (VhostUserMessage m = io.call(FrontendRequest.GET_VRING_BASE, VringState.ENCODED_LENGTH, List.of())) {
            return vringStateReply.wrap(m.payload(), 0).num();
        }
    }

    private void sendFd(FrontendRequest r, int index, EventFd fd) throws IOException {
        io.encodeU64(VringFdIndex.encode(index, fd == null));
        io.send(r, U64Payload.ENCODED_LENGTH, fd == null ? List.of() : List.of(fd.owner()));
    }

    /**
     * Sends SET_VRING_KICK (starts the ring).
     *
     * @param index ring
     * @param kick the eventfd, or {@code null} to have the back-end poll
     * @throws IOException on failure
     */
    public void setVringKick(int index, EventFd kick) throws IOException {
        sendFd(FrontendRequest.SET_VRING_KICK, index, kick);
    }

    /**
     * Sends SET_VRING_CALL.
     *
     * @param index ring
     * @param call the eventfd, or {@code null} (in-band VRING_CALL when negotiated)
     * @throws IOException on failure
     */
    public void setVringCall(int index, EventFd call) throws IOException {
        sendFd(FrontendRequest.SET_VRING_CALL, index, call);
    }

    /**
     * Sends SET_VRING_ERR.
     *
     * @param index ring
     * @param err the eventfd, or {@code null}
     * @throws IOException on failure
     */
    public void setVringErr(int index, EventFd err) throws IOException {
        sendFd(FrontendRequest.SET_VRING_ERR, index, err);
    }

    /**
     * Sends SET_VRING_ENABLE.
     *
     * @param index ring
     * @param enabled the state
     * @throws IOException on failure
     */
    public void setVringEnable(int index, boolean enabled) throws IOException {
        io.sendState(FrontendRequest.SET_VRING_ENABLE, index, enabled ? 1 : 0);
    }

    /**
     * Kicks a ring in-band (VRING_KICK, INBAND_NOTIFICATIONS).
     *
     * @param index ring
     * @throws IOException on failure
     */
    public void kickInband(int index) throws IOException {
        io.sendState(FrontendRequest.VRING_KICK, index, 0);
    }

    /**
     * Programs a new ring from a driver-side queue and starts it at its beginning (split: index 0;
     * packed: slot 0 with both wrap counters set, as a fresh packed ring starts).
     *
     * @param index ring
     * @param queue the driver-side queue (its rings in {@code memory})
     * @param memory the memory shared with the back-end
     * @return the running ring with its kick and call eventfds
     * @throws IOException on failure
     */
    public FrontendQueue startQueue(int index, DriverQueue queue, GuestMemory memory) throws IOException {
        boolean packed = (queue.config().features() & QueueConfig.F_RING_PACKED) != 0;
        return startQueue(index, queue, memory, packed ? 1 << 15 : 0);
    }

    /**
     * Programs a ring from a driver-side queue in {@code memory} and starts it: NUM, ADDR, BASE, CALL,
     * KICK and, with F_PROTOCOL_FEATURES, ENABLE.
     *
     * @param index ring
     * @param queue the driver-side queue (its rings in {@code memory})
     * @param memory the memory shared with the back-end
     * @param base the starting vring base (0 for a new ring)
     * @return the running ring with its kick and call eventfds
     * @throws IOException on failure
     */
    public FrontendQueue startQueue(int index, DriverQueue queue, GuestMemory memory, int base) throws IOException {
        QueueConfig c = queue.config();
        EventFd kick = EventFd.create();
        EventFd call = EventFd.create();
        try {
            setVringNum(index, c.size());
            setVringAddr(index, userAddr(memory, c.descAddr()), userAddr(memory, c.deviceAddr()),
                    userAddr(memory, c.driverAddr()), false, c.deviceAddr());
            setVringBase(index, base);
            setVringCall(index, call);
            setVringKick(index, kick);
            if ((features & VhostUserFeature.PROTOCOL_FEATURES.mask()) != 0) {
                setVringEnable(index, true);
            }
        } catch (IOException | RuntimeException e) {
            kick.close();
            call.close();
            throw e;
        }
        return new FrontendQueue(this, index, queue, kick, call);
    }

    /**
     * {@return the front-end address of a guest-physical address}
     *
     * @param memory the table
     * @param gpa the address
     * @throws GuestMemoryException when no region holds it
     */
    public static long userAddr(GuestMemory memory, long gpa) throws GuestMemoryException {
        int i = memory.regionIndexOfGpa(gpa, 1);
        if (i < 0) {
            throw new GuestMemoryException("address outside guest memory, gpa=0x" + Long.toHexString(gpa));
        }
        GuestRegion r = memory.region(i);
        return r.userAddr() + (gpa - r.guestPhysAddr());
    }

    // ---- IOTLB (VIRTIO_F_ACCESS_PLATFORM) ----

    /**
     * Maps an I/O virtual address range for the back-end (IOTLB_MSG update).
     *
     * @param iova start
     * @param size bytes
     * @param userAddr the front-end address it maps to
     * @param access 1 read, 2 write, 3 both
     * @throws IOException on failure or refusal
     */
    public void iotlbUpdate(long iova, long size, long userAddr, int access) throws IOException {
        iotlbMessage(iova, size, userAddr, access, IotlbMsg.TYPE_UPDATE);
    }

    /**
     * Unmaps an I/O virtual address range (IOTLB_MSG invalidate).
     *
     * @param iova start
     * @param size bytes
     * @throws IOException on failure or refusal
     */
    public void iotlbInvalidate(long iova, long size) throws IOException {
        iotlbMessage(iova, size, 0, IotlbMsg.PERM_NONE, IotlbMsg.TYPE_INVALIDATE);
    }

    private void iotlbMessage(long iova, long size, long userAddr, int access, int type) throws IOException {
        iotlbMsg.wrap(io.body(IotlbMsg.ENCODED_LENGTH), 0).clear().iova(iova).size(size).userAddr(userAddr)
                .perm(access).type(type);
        try (VhostUserMessage m = io.call(FrontendRequest.IOTLB_MSG, IotlbMsg.ENCODED_LENGTH, List.of())) {
            long status = m.payloadU64();
            if (status != 0) {
                throw new FrontendException(status, "IOTLB_MSG " + (type == 2 ? "update" : "invalidate")
                        + " refused, status=" + status);
            }
        }
    }

    // ---- config ----

    /**
     * Reads the configuration space (GET_CONFIG).
     *
     * @param offset first byte
     * @param size byte count (at most 256)
     * @return the bytes
     * @throws IOException on failure, or {@link FrontendException} when the back-end returned no data
     */
    public byte[] getConfig(int offset, int size) throws IOException {
        MemorySegment b = io.body(ConfigSpace.encodedLength(size));
        configRequest.wrap(b, 0).access(offset, size, ConfigSpace.FLAGS_WRITABLE);
        b.asSlice(ConfigSpace.PAYLOAD_OFFSET, size).fill((byte) 0);
        try (VhostUserMessage m = io.call(FrontendRequest.GET_CONFIG, ConfigSpace.encodedLength(size), List.of())) {
            MemorySegment p = m.payload();
            long got = configReply.wrap(p, 0).configSize();
            if (got != size || p.byteSize() < ConfigSpace.encodedLength(size)) {
                throw new FrontendException(0, "GET_CONFIG refused: asked " + size + " bytes at " + offset + ", got " + got);
            }
            return configReply.config().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
        }
    }

    /**
     * Writes the configuration space (SET_CONFIG).
     *
     * @param offset first byte
     * @param data the bytes
     * @throws IOException on failure
     */
    public void setConfig(int offset, byte[] data) throws IOException {
        configRequest.wrap(io.body(ConfigSpace.encodedLength(data.length)), 0).access(offset, data.length, ConfigSpace.FLAGS_WRITABLE)
                .copyConfigFrom(MemorySegment.ofArray(data), 0, data.length);
        io.send(FrontendRequest.SET_CONFIG, ConfigSpace.encodedLength(data.length), List.of());
    }

    // ---- status ----

    /**
     * Sends SET_STATUS.
     *
     * @param status the virtio status byte
     * @throws IOException on failure
     */
    public void setStatus(int status) throws IOException {
        io.sendU64(FrontendRequest.SET_STATUS, status);
    }

    /**
     * {@return the status (GET_STATUS)}
     *
     * @throws IOException on failure
     */
    public int getStatus() throws IOException {
        return (int) io.callU64(FrontendRequest.GET_STATUS);
    }

    // ---- inflight ----

    /**
     * An inflight log as GET_INFLIGHT_FD returns it.
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
     * @throws IOException on failure
     */
    public Inflight getInflightFd(int numQueues, int queueSize) throws IOException {
        inflightRequest.wrap(io.body(InflightDescription.ENCODED_LENGTH), 0).clear().numQueues(numQueues).queueSize(queueSize);
        try (VhostUserMessage m = io.call(FrontendRequest.GET_INFLIGHT_FD, InflightDescription.ENCODED_LENGTH, List.of())) {
            if (m.fdCount() != 1) {
                throw new FrontendException(0, "GET_INFLIGHT_FD reply carried no fd");
            }
            InflightDescription.Decoder p = inflightReply.wrap(m.payload(), 0);
            return new Inflight(m.takeFd(0), p.mmapSize(), p.mmapOffset(), p.numQueues(), p.queueSize());
        }
    }

    /**
     * Hands an inflight log to the back-end (SET_INFLIGHT_FD), as after a reconnect.
     *
     * @param inflight the log
     * @throws IOException on failure
     */
    public void setInflightFd(Inflight inflight) throws IOException {
        inflightRequest.wrap(io.body(InflightDescription.ENCODED_LENGTH), 0).clear().mmapSize(inflight.mmapSize())
                .mmapOffset(inflight.mmapOffset()).numQueues(inflight.numQueues()).queueSize(inflight.queueSize());
        io.send(FrontendRequest.SET_INFLIGHT_FD, InflightDescription.ENCODED_LENGTH, List.of(inflight.fd()));
    }

    // ---- device state ----

    /**
     * Starts a device-state transfer (SET_DEVICE_STATE_FD, phase stopped).
     *
     * @param save true to save (the back-end writes into {@code fd}), false to load (it reads)
     * @param fd one end of a pipe
     * @throws IOException on failure or a non-zero status
     */
    public void setDeviceStateFd(boolean save, OwnedFd fd) throws IOException {
        deviceState.wrap(io.body(DeviceStateTransfer.ENCODED_LENGTH), 0).clear().direction(save ? 0 : 1).phase(0);
        try (VhostUserMessage m = io.call(FrontendRequest.SET_DEVICE_STATE_FD, DeviceStateTransfer.ENCODED_LENGTH, List.of(fd))) {
            long status = m.payloadU64();
            if ((status & 0xff) != 0) {
                throw new FrontendException(status & 0xff, "SET_DEVICE_STATE_FD refused, status=" + (status & 0xff));
            }
        }
    }

    /**
     * {@return CHECK_DEVICE_STATE's result, 0 when the transfer succeeded}
     *
     * @throws IOException on failure
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
     * Opens the back-end channel (SET_BACKEND_REQ_FD) and handles its requests on a thread of its own.
     *
     * @param handler receives the requests
     * @throws IOException on failure
     */
    public void openBackendChannel(BackendRequestHandler handler) throws IOException {
        MessageChannel.Pair pair = MessageChannel.pair();
        try (OwnedFd theirs = pair.peerFd()) {
            io.send(FrontendRequest.SET_BACKEND_REQ_FD, 0, List.of(theirs));
        } catch (IOException | RuntimeException e) {
            pair.channel().close();
            throw e;
        }
        if (backendChannel != null) {
            backendChannel.close(); // the back-end replaced it too
        }
        backendChannel = new BackendChannelReader(pair.channel(), handler);
    }

    /**
     * Runs a callback for each in-band VRING_CALL (shortcut for {@link #openBackendChannel}).
     *
     * @param onCall receives the ring index
     * @throws IOException on failure
     */
    public void openBackendChannel(IntConsumer onCall) throws IOException {
        openBackendChannel(new BackendRequestHandler() {
            @Override
            public void vringCall(int index) {
                onCall.accept(index);
            }
        });
    }

    /** {@return the underlying channel (for tests that play a hostile front-end)} */
    public MessageChannel channel() {
        return io.channel();
    }

    /** {@return the message writer (for tests that send raw requests)} */
    public VhostUserMessageWriter writer() {
        return io.writer();
    }

    /** {@return the reply reader} */
    public VhostUserMessageReader reader() {
        return io.reader();
    }

    /** Disconnects. */
    @Override
    public void close() {
        io.channel().close();
        if (backendChannel != null) {
            backendChannel.close();
        }
    }
}
