package dev.outproc.vhost.backend;

import dev.outproc.vhost.message.VhostUserFeature;
import dev.outproc.core.event.EventFd;
import dev.outproc.core.event.EventLoop;
import dev.outproc.core.fd.FdChannel;
import dev.outproc.core.fd.NativeException;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.DirtyLog;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestMemoryException;
import dev.outproc.core.memory.GuestMemoryHolder;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.memory.Unsigned;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.core.transport.PeerClosedException;
import dev.outproc.core.transport.ReceivedFds;
import dev.outproc.vhost.connection.VhostUserMessage;
import dev.outproc.vhost.connection.VhostUserMessageReader;
import dev.outproc.vhost.connection.VhostUserMessageWriter;
import dev.outproc.core.virtqueue.DeviceQueue;
import dev.outproc.core.virtqueue.PackedQueue;
import dev.outproc.core.virtqueue.QueueConfig;
import dev.outproc.core.virtqueue.QueueState;
import dev.outproc.core.virtqueue.SplitQueue;
import dev.outproc.core.virtqueue.VirtqueueException;
import dev.outproc.vhost.message.BackendRequest;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.MessageStream;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.vhost.message.VhostUserHeader;
import dev.outproc.vhost.message.VhostUserProtocolException;
import dev.outproc.vhost.message.VhostUserRequest;
import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.vhost.message.VringFdIndex;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

import static dev.outproc.vhost.message.WireLayout.NATIVE_U16;
import static dev.outproc.vhost.message.WireLayout.NATIVE_U32;
import static dev.outproc.vhost.message.WireLayout.NATIVE_U64;

/**
 * Runs the vhost-user protocol for one {@link VhostUserDevice} over one front-end connection:
 * negotiation, memory table, rings, notifications, dirty logging, inflight tracking, configuration
 * space, status and device-state transfer. {@link VhostUserServer} accepts connections and runs one
 * back-end after another.
 *
 * <h2 id="checks">Untrusted input</h2>
 * Every message is checked in two layers: syntax by {@link VhostUserMessageReader} (framing, exact payload
 * sizes, fd counts, reserved fields) and meaning here (negotiated features, ring and memory state,
 * value ranges). A refused request gets a non-zero REPLY_ACK status when the front-end asked for one;
 * otherwise, or when the stream cannot be trusted any more, the connection closes. Either way every fd
 * that arrived is closed, and the device's rings stop.
 *
 * <h2 id="threads">Threads</h2>
 * {@link #serve} reads and handles control messages on the calling thread. Ring work runs on worker
 * event loops; a control message that changes memory or a ring first waits on the ring's worker, so
 * the device never sees a change in the middle of {@link VhostUserDevice#processQueue}.
 */
public final class VhostUserBackend implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VhostUserBackend.class.getName());

    /** Memory slots offered with CONFIGURE_MEM_SLOTS (the value libvhost-user and rust-vmm use). */
    public static final int MAX_MEM_SLOTS = 509;
    private static final int MAX_FDS = 8;
    private static final long LOG_ALL = VhostUserFeature.LOG_ALL.mask();
    /** Rings are little-endian (VIRTIO 1.x), whatever the host's order. */
    private static final java.lang.foreign.ValueLayout.OfShort LE_U16 = java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED
            .withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
    private static final long PROTOCOL_FEATURES = VhostUserFeature.PROTOCOL_FEATURES.mask();
    /**
     * Protocol features this library implements for every device, offered whatever the device is.
     * INFLIGHT_SHMFD is among them: the inflight log tracks descriptor chains, not device state, so every
     * device gets crash recovery of its in-flight requests. DEVICE_STATE is not: it is offered only for a
     * {@linkplain VirtioDevice#migratable() migratable} device.
     */
    public static final long LIBRARY_PROTOCOL_FEATURES = ProtocolFeature.maskOf(ProtocolFeature.MQ,
            ProtocolFeature.LOG_SHMFD, ProtocolFeature.REPLY_ACK, ProtocolFeature.BACKEND_REQ,
            ProtocolFeature.INFLIGHT_SHMFD, ProtocolFeature.RESET_DEVICE, ProtocolFeature.INBAND_NOTIFICATIONS,
            ProtocolFeature.CONFIGURE_MEM_SLOTS, ProtocolFeature.STATUS, ProtocolFeature.GPA_ADDRESSES);
    /** Protocol features a device may add through {@link VhostUserDevice#protocolFeatures()}. */
    public static final long DEVICE_PROTOCOL_FEATURES = ProtocolFeature.maskOf(ProtocolFeature.RARP,
            ProtocolFeature.MTU, ProtocolFeature.CONFIG);

    /**
     * Tuning of a back-end.
     *
     * @param workerThreads the most worker event loops; a back-end starts {@code min(workerThreads, queueCount)}
     *        of them and spreads its rings over them round-robin
     * @param busyPoll whether workers spin instead of sleeping in epoll (lower latency, one busy core each)
     */
    public record Options(int workerThreads, boolean busyPoll) {
        /** Checks the values. */
        public Options {
            if (workerThreads < 1) {
                throw new IllegalArgumentException("workerThreads must be >= 1, workerThreads=" + workerThreads);
            }
        }

        /**
         * {@return as many workers as processors (so a back-end runs one per queue, up to the processor
         * count), sleeping in epoll}
         */
        public static Options defaults() {
            return new Options(Math.max(1, Runtime.getRuntime().availableProcessors()), false);
        }
    }

    private final VhostUserDevice device;
    private final Options options;
    private final GuestMemoryHolder memory = new GuestMemoryHolder();
    private final EventLoop[] workers;
    private final Vring[] rings;
    private final long offeredFeatures;
    private final long offeredProtocolFeatures;

    private MessageChannel channel;
    private VhostUserMessageReader reader;
    private VhostUserMessageWriter writer;
    private volatile MessageChannel backendChannel;
    private volatile VhostUserMessageWriter backendWriter;
    private long negotiatedFeatures;
    private boolean featuresSet;
    private long protocolFeatures;
    private boolean protocolFeaturesSet;
    private boolean owner;
    private DirtyLog log;
    private OwnedFd logEventFd;
    private InflightRegion inflight;
    private int status;
    private CompletableFuture<Void> transfer;
    private FdChannel transferStream;
    /** The device IOTLB (ACCESS_PLATFORM): rings then live in the IOVA space it builds. */
    private final Iotlb iotlb = new Iotlb();
    private volatile GuestMemory iovaSpace = GuestMemory.empty();
    /** Per ring: an IOVA that missed, plus one (0: none), for the call sender to report as an IOTLB miss. */
    private final java.util.concurrent.atomic.AtomicLongArray missPending;
    private Thread[] pollers;
    private final java.util.concurrent.atomic.AtomicIntegerArray callPending;
    private volatile Thread callSender;
    private volatile boolean closed;

    /**
     * Creates a back-end for a device; its worker threads start at once.
     *
     * @param device the device
     * @param options tuning
     * @throws NativeException when the worker event loops cannot be created
     */
    public VhostUserBackend(VirtioDevice device, Options options) throws NativeException {
        this.device = VhostUserDevice.of(device);
        this.options = options;
        int queues = device.queueCount();
        if (queues < 1 || queues > 256) {
            throw new IllegalArgumentException("queueCount must be 1..256, queueCount=" + queues);
        }
        int maxSize = device.maxQueueSize();
        if (maxSize < 1 || maxSize > QueueConfig.MAX_SIZE || Integer.bitCount(maxSize) != 1) {
            throw new IllegalArgumentException("maxQueueSize must be a power of two <= 32768, maxQueueSize=" + maxSize);
        }
        int configSize = device.configSize();
        if (configSize < 0 || configSize > 256) {
            throw new IllegalArgumentException("configSize must be 0..256, configSize=" + configSize);
        }
        this.offeredFeatures = device.features() | PROTOCOL_FEATURES | LOG_ALL;
        long deviceProtocol = this.device.protocolFeatures() & DEVICE_PROTOCOL_FEATURES;
        if (configSize > 0) {
            deviceProtocol |= ProtocolFeature.CONFIG.mask();
        }
        if (device.migratable()) {
            deviceProtocol |= ProtocolFeature.DEVICE_STATE.mask();
        }
        this.offeredProtocolFeatures = LIBRARY_PROTOCOL_FEATURES | deviceProtocol;
        int workerCount = Math.min(queues, options.workerThreads());
        this.workers = new EventLoop[workerCount];
        this.rings = new Vring[queues];
        try {
            for (int i = 0; i < workerCount; i++) {
                workers[i] = EventLoop.start("vhost-user-worker-" + i,
                        options.busyPoll() ? EventLoop.Mode.BUSY_POLL : EventLoop.Mode.BLOCKING);
            }
        } catch (NativeException e) {
            for (EventLoop w : workers) {
                if (w != null) {
                    w.close();
                }
            }
            throw e;
        }
        for (int i = 0; i < queues; i++) {
            rings[i] = new Vring(i, this, workers[i % workerCount]);
        }
        this.pollers = new Thread[queues];
        this.callPending = new java.util.concurrent.atomic.AtomicIntegerArray(queues);
        this.missPending = new java.util.concurrent.atomic.AtomicLongArray(queues);
    }

    /** {@return the virtio features offered to front-ends} */
    public long offeredFeatures() {
        return offeredFeatures;
    }

    /** {@return the protocol features offered to front-ends} */
    public long offeredProtocolFeatures() {
        return offeredProtocolFeatures;
    }

    /** {@return the virtio features the front-end acknowledged (0 before SET_FEATURES)} */
    public long negotiatedFeatures() {
        return negotiatedFeatures;
    }

    /** {@return the protocol features the front-end acknowledged} */
    public long negotiatedProtocolFeatures() {
        return protocolFeatures;
    }

    /**
     * {@return a ring, for inspection}
     *
     * @param index the ring index
     */
    public Vring ring(int index) {
        return rings[index];
    }

    /** {@return the current guest memory table} */
    public GuestMemory memory() {
        return memory.current();
    }

    /**
     * Serves one front-end until it disconnects or breaks the protocol, then releases everything the
     * connection held (rings stopped, memory unmapped, every fd closed). The back-end can then serve the
     * next front-end.
     *
     * @param connection the connected front-end; closed on return
     * @throws IOException when the connection ended with a protocol violation or an I/O error (it is
     *         closed all the same); a clean disconnect returns normally
     */
    public void serve(MessageChannel connection) throws IOException {
        this.channel = connection;
        this.reader = new VhostUserMessageReader(connection, MessageStream.FRONTEND_REQUESTS);
        this.writer = new VhostUserMessageWriter(connection);
        try {
            while (!closed) {
                if (!handleOne()) {
                    return;
                }
            }
        } finally {
            disconnect();
        }
    }

    /** Reads and handles one message; returns false at a clean end of stream. */
    private boolean handleOne() throws IOException {
        VhostUserMessage message;
        try {
            message = reader.read();
        } catch (PeerClosedException e) {
            if (e.bytesRead() == 0) {
                return false;
            }
            throw e;
        } catch (VhostUserProtocolException e) {
            // Syntax broken. In step (payload consumed): answer when asked, else close.
            boolean needReply = (e.flags() & VhostUserHeader.NEED_REPLY_FLAG) != 0 && e.flags() >= 0;
            if (!e.connectionMustClose() && needReply && replyAckNegotiated()) {
                LOG.log(System.Logger.Level.WARNING, "refused request {0}: {1}", e.request(), e.getMessage());
                sendAck(e.request(), BackendException.INVALID);
                return true;
            }
            throw e;
        }
        try (message) {
            FrontendRequest fr = (FrontendRequest) message.request();
            boolean needReply = message.needReply();
            try {
                boolean replied = dispatch(fr, message.payload(), message.fds());
                if (needReply && !replied && replyAckNegotiated() && !fr.alwaysReplies()) {
                    sendAck(fr.code(), 0);
                }
            } catch (BackendException | GuestMemoryException | VirtqueueException | NativeException e) {
                long code = e instanceof BackendException b ? b.status() : BackendException.INVALID;
                if (needReply && replyAckNegotiated() && !fr.alwaysReplies()) {
                    LOG.log(System.Logger.Level.WARNING, "refused {0}: {1}", fr.specName(), e.getMessage());
                    sendAck(fr.code(), code);
                } else if (repliesWithStatus(fr)) {
                    // These answer with a u64 status of their own (vhost-user.rst): the refusal goes there.
                    // SET_DEVICE_STATE_FD: bits 0-7 the error, bit 8 "no fd returned".
                    LOG.log(System.Logger.Level.WARNING, "refused {0}: {1}", fr.specName(), e.getMessage());
                    replyU64(fr, fr == FrontendRequest.SET_DEVICE_STATE_FD ? (code & 0xff) | 1L << 8 : code);
                } else {
                    throw new BackendException(code, fr.specName() + " refused and the protocol has no error reply "
                            + "for it here, closing the connection: " + e.getMessage(), e);
                }
            }
            return true;
        }
    }

    private static boolean repliesWithStatus(FrontendRequest r) {
        return r == FrontendRequest.SET_LOG_BASE || r == FrontendRequest.SET_DEVICE_STATE_FD
                || r == FrontendRequest.CHECK_DEVICE_STATE || r == FrontendRequest.IOTLB_MSG;
    }

    private boolean replyAckNegotiated() {
        return (protocolFeatures & ProtocolFeature.REPLY_ACK.mask()) != 0;
    }

    private boolean negotiated(ProtocolFeature f) {
        return (protocolFeatures & f.mask()) != 0;
    }

    private void require(ProtocolFeature f, FrontendRequest r) throws BackendException {
        if (!negotiated(f)) {
            throw new BackendException(BackendException.UNSUPPORTED, r.specName() + " needs protocol feature "
                    + f + ", which was not negotiated");
        }
    }

    private Vring ringAt(long index, FrontendRequest r) throws BackendException {
        if (index < 0 || index >= rings.length) {
            throw new BackendException(BackendException.INVALID, r.specName() + ": ring index out of range, index="
                    + index + ", queues=" + rings.length);
        }
        return rings[(int) index];
    }

    /** Handles a checked request; returns whether it sent its own reply. */
    private boolean dispatch(FrontendRequest r, MemorySegment p, ReceivedFds fds) throws IOException {
        switch (r) {
            case GET_FEATURES -> {
                replyU64(r, offeredFeatures);
                return true;
            }
            case SET_FEATURES -> setFeatures(p.get(NATIVE_U64, 0));
            case SET_OWNER -> owner = true;
            case RESET_OWNER -> resetDevice();
            case GET_PROTOCOL_FEATURES -> {
                replyU64(r, offeredProtocolFeatures);
                return true;
            }
            case SET_PROTOCOL_FEATURES -> {
                long value = p.get(NATIVE_U64, 0);
                if ((value & ~offeredProtocolFeatures) != 0) {
                    throw new BackendException(BackendException.INVALID, "protocol features not offered, extra=0x"
                            + Long.toHexString(value & ~offeredProtocolFeatures));
                }
                protocolFeatures = value;
                protocolFeaturesSet = true;
            }
            case GET_QUEUE_NUM -> {
                replyU64(r, rings.length);
                return true;
            }
            case GET_MAX_MEM_SLOTS -> {
                require(ProtocolFeature.CONFIGURE_MEM_SLOTS, r);
                replyU64(r, MAX_MEM_SLOTS);
                return true;
            }
            case SET_MEM_TABLE -> setMemTable(p, fds);
            case ADD_MEM_REG -> addMemRegion(p, fds);
            case REM_MEM_REG -> removeMemRegion(p);
            case SET_LOG_BASE -> {
                setLogBase(p, fds);
                return true;
            }
            case SET_LOG_FD -> {
                if (logEventFd != null) {
                    logEventFd.close();
                }
                logEventFd = fds.take(0);
            }
            case SET_VRING_NUM -> setVringNum(p);
            case SET_VRING_ADDR -> setVringAddr(p);
            case SET_VRING_BASE -> setVringBase(p);
            case GET_VRING_BASE -> {
                getVringBase(r, p);
                return true;
            }
            case SET_VRING_KICK -> setVringKick(p, fds);
            case SET_VRING_CALL -> setVringCall(p, fds, false);
            case SET_VRING_ERR -> setVringCall(p, fds, true);
            case SET_VRING_ENABLE -> setVringEnable(p);
            case VRING_KICK -> {
                require(ProtocolFeature.INBAND_NOTIFICATIONS, r);
                Vring v = ringAt(Integer.toUnsignedLong(p.get(NATIVE_U32, 0)), r);
                v.worker.execute(() -> runRing(v));
            }
            case SET_BACKEND_REQ_FD -> {
                require(ProtocolFeature.BACKEND_REQ, r);
                MessageChannel old = backendChannel;
                MessageChannel next = MessageChannel.adopt(fds.take(0));
                backendWriter = new VhostUserMessageWriter(next);
                backendChannel = next;
                if (old != null) {
                    old.close();
                }
                startCallSender();
            }
            case GET_CONFIG -> {
                getConfig(r, p);
                return true;
            }
            case SET_CONFIG -> setConfig(r, p);
            case SET_VRING_ENDIAN -> {
                require(ProtocolFeature.CROSS_ENDIAN, r);
                throw new BackendException(BackendException.UNSUPPORTED, "only little-endian (VIRTIO 1.x) rings are supported");
            }
            case NET_SET_MTU -> {
                require(ProtocolFeature.MTU, r);
                int mtu = (int) p.get(NATIVE_U64, 0);
                deviceCall(r, () -> device.setMtu(mtu));
            }
            case SEND_RARP -> {
                require(ProtocolFeature.RARP, r);
                byte[] mac = new byte[6];
                MemorySegment.copy(p, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, mac, 0, 6);
                deviceCall(r, () -> device.sendRarp(mac));
            }
            case RESET_DEVICE -> {
                require(ProtocolFeature.RESET_DEVICE, r);
                resetDevice();
            }
            case SET_STATUS -> {
                require(ProtocolFeature.STATUS, r);
                status = (int) p.get(NATIVE_U64, 0);
                device.statusChanged(status);
                if (status == 0) {
                    resetDevice();
                }
            }
            case GET_STATUS -> {
                require(ProtocolFeature.STATUS, r);
                replyU64(r, status);
                return true;
            }
            case GET_INFLIGHT_FD -> {
                getInflightFd(r, p);
                return true;
            }
            case SET_INFLIGHT_FD -> setInflightFd(p, fds);
            case SET_DEVICE_STATE_FD -> {
                setDeviceStateFd(r, p, fds);
                return true;
            }
            case CHECK_DEVICE_STATE -> {
                checkDeviceState(r);
                return true;
            }
            case IOTLB_MSG -> {
                iotlbMessage(p);
                replyU64(r, 0);
                return true;
            }
            case CREATE_CRYPTO_SESSION, POSTCOPY_ADVISE, POSTCOPY_END, GET_SHARED_OBJECT, GET_SHMEM_CONFIG -> {
                // Requests that always reply, for features this back-end never offers: the reply is an
                // error status where the reply is a u64, else the connection closes.
                if (r.replyPayload() == dev.outproc.vhost.message.PayloadType.U64 && r.maxReplyFds() == 0) {
                    LOG.log(System.Logger.Level.WARNING, "{0} is not supported; replying with an error", r.specName());
                    replyU64(r, BackendException.UNSUPPORTED);
                    return true;
                }
                throw new BackendException(BackendException.UNSUPPORTED, r.specName() + " is not supported (its feature is never offered)");
            }
            default -> throw new BackendException(BackendException.UNSUPPORTED, r.specName()
                    + " is not supported (its feature is never offered)");
        }
        return false;
    }

    /** A device callback that may refuse with an {@link IOException}. */
    private interface DeviceCall {
        void run() throws IOException;
    }

    /**
     * Runs a device callback; its refusal becomes a {@link BackendException}, so that the front-end gets
     * an error status (REPLY_ACK) instead of losing the connection.
     */
    private static void deviceCall(FrontendRequest r, DeviceCall call) throws BackendException {
        try {
            call.run();
        } catch (BackendException e) {
            throw e;
        } catch (IOException e) {
            throw new BackendException(BackendException.INVALID, r.specName() + " refused by the device: " + e.getMessage(), e);
        }
    }

    // ---- negotiation ----

    private void setFeatures(long value) throws BackendException {
        if ((value & ~offeredFeatures) != 0) {
            throw new BackendException(BackendException.INVALID, "features not offered, extra=0x"
                    + Long.toHexString(value & ~offeredFeatures));
        }
        boolean first = !featuresSet;
        negotiatedFeatures = value;
        featuresSet = true;
        // Without F_PROTOCOL_FEATURES rings are enabled from the start (vhost-user.rst, "Ring states").
        boolean enableAll = (value & PROTOCOL_FEATURES) == 0 && first;
        for (Vring v : rings) {
            // On the worker: once SET_FEATURES is handled, no write the device makes is logged (or left
            // unlogged) under the old F_LOG_ALL, and the worker sees the new log state.
            v.worker.awaitOnLoop(() -> {
                if (enableAll) {
                    v.enabled = true;
                }
                applyDirtyLog(v);
            });
        }
        device.featuresNegotiated(value);
    }

    // ---- memory ----

    private void setMemTable(MemorySegment p, ReceivedFds fds) throws IOException {
        int n = p.get(NATIVE_U32, 0);
        if (n < 1 || n > 8) {
            throw new BackendException(BackendException.INVALID, "SET_MEM_TABLE needs 1..8 regions, nregions=" + Integer.toUnsignedString(n));
        }
        List<GuestRegion> mapped = new ArrayList<>(n);
        try {
            for (int i = 0; i < n; i++) {
                long base = 8 + 32L * i;
                try (OwnedFd fd = fds.take(i)) {
                    requireFdCovers(fd, p.get(NATIVE_U64, base + 24), p.get(NATIVE_U64, base + 8), "SET_MEM_TABLE region " + i);
                    mapped.add(GuestRegion.map(p.get(NATIVE_U64, base), p.get(NATIVE_U64, base + 8),
                            p.get(NATIVE_U64, base + 16), p.get(NATIVE_U64, base + 24), fd, false));
                }
            }
            GuestMemory next = GuestMemory.of(mapped);
            publishMemory(next);
        } catch (IOException | RuntimeException e) {
            for (GuestRegion region : mapped) {
                region.close();
            }
            throw e;
        }
    }

    private void addMemRegion(MemorySegment p, ReceivedFds fds) throws IOException {
        GuestMemory current = memory.current();
        if (current.regionCount() >= MAX_MEM_SLOTS) {
            throw new BackendException(BackendException.INVALID, "ADD_MEM_REG: all " + MAX_MEM_SLOTS + " slots are in use");
        }
        GuestRegion region;
        try (OwnedFd fd = fds.take(0)) {
            requireFdCovers(fd, p.get(NATIVE_U64, 32), p.get(NATIVE_U64, 16), "ADD_MEM_REG");
            region = GuestRegion.map(p.get(NATIVE_U64, 8), p.get(NATIVE_U64, 16), p.get(NATIVE_U64, 24),
                    p.get(NATIVE_U64, 32), fd, false);
        }
        try {
            publishMemory(current.with(region));
        } catch (IOException | RuntimeException e) {
            region.close();
            throw e;
        }
    }

    private void removeMemRegion(MemorySegment p) throws IOException {
        long gpa = p.get(NATIVE_U64, 8);
        long size = p.get(NATIVE_U64, 16);
        long uaddr = p.get(NATIVE_U64, 24);
        GuestMemory current = memory.current();
        for (GuestRegion region : current.regions()) {
            if (region.guestPhysAddr() == gpa && region.sizeBytes() == size && region.userAddr() == uaddr) {
                publishMemory(current.without(region));
                return;
            }
        }
        throw new BackendException(BackendException.INVALID, "REM_MEM_REG: no region gpa=" + Unsigned.hex(gpa)
                + " size=" + Unsigned.hex(size) + " uaddr=" + Unsigned.hex(uaddr));
    }

    /**
     * Refuses shared memory that claims more bytes than its fd holds: mmap accepts it, but touching a page
     * past the end of the file raises SIGBUS in this process. (A front-end can still shrink its file later;
     * the check stops the mistake and the attack at mapping time.)
     */
    private static void requireFdCovers(OwnedFd fd, long offset, long size, String what) throws BackendException {
        long fileSize;
        try {
            fileSize = dev.outproc.core.memory.MemFd.size(fd.get());
        } catch (NativeException e) {
            throw new BackendException(BackendException.INVALID, what + ": the fd is not a mappable file: " + e.getMessage(), e);
        }
        if (offset < 0 || size < 0 || Unsigned.wraps(offset, size) || offset + size > fileSize) {
            throw new BackendException(BackendException.INVALID, what + ": the mapping ends past its file, offset="
                    + Unsigned.hex(offset) + ", size=" + Unsigned.hex(size) + ", file size=" + Unsigned.hex(fileSize));
        }
    }

    /** Switches every worker to the new table at a safe point, then unmaps what left. */
    private void publishMemory(GuestMemory table) throws IOException {
        GuestMemory next = table;
        if (iommu()) {
            // Rings and buffers are addressed by IOVA: they see the IOTLB's views of the new table.
            next = iotlb.build(table);
            iovaSpace = next;
        }
        switchRingMemory(next);
        memory.publish(table);
        if (iommu()) {
            retryAfterIotlbChange();
        }
    }

    /** Gives every ring a new memory snapshot at a safe point of its worker. */
    private void switchRingMemory(GuestMemory next) {
        for (EventLoop worker : workers) {
            worker.awaitOnLoop(() -> {
                for (Vring v : rings) {
                    if (v.worker != worker) {
                        continue;
                    }
                    v.memory = next;
                    if (v.queue != null && v.started) {
                        try {
                            v.queue.setMemory(next);
                        } catch (VirtqueueException e) {
                            v.markBroken(e);
                        }
                    }
                }
            });
        }
    }

    // ---- IOTLB (VIRTIO_F_ACCESS_PLATFORM) ----

    /** {@return whether the rings use I/O virtual addresses (ACCESS_PLATFORM negotiated)} */
    boolean iommu() {
        return (negotiatedFeatures & VirtioFeature.ACCESS_PLATFORM.mask()) != 0;
    }

    /** {@return the address space the rings live in: the IOTLB's when ACCESS_PLATFORM is on, else guest-physical} */
    private GuestMemory ringSpace() {
        return iommu() ? iovaSpace : memory.current();
    }

    /** IOTLB_MSG from the front-end: an update (type 2) or an invalidation (type 3). */
    private void iotlbMessage(MemorySegment p) throws IOException {
        if (!iommu()) {
            throw new BackendException(BackendException.UNSUPPORTED,
                    "IOTLB_MSG needs VIRTIO_F_ACCESS_PLATFORM, which was not negotiated");
        }
        long iova = p.get(NATIVE_U64, 0);
        long size = p.get(NATIVE_U64, 8);
        long uaddr = p.get(NATIVE_U64, 16);
        int perm = Byte.toUnsignedInt(p.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 24));
        int type = Byte.toUnsignedInt(p.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 25));
        switch (type) {
            case 2 -> iotlb.update(iova, size, uaddr, perm);
            case 3 -> iotlb.invalidate(iova, size);
            default -> throw new BackendException(BackendException.INVALID,
                    "IOTLB_MSG from a front-end is an update (2) or an invalidation (3), type=" + type);
        }
        iovaSpace = iotlb.build(memory.current());
        switchRingMemory(iovaSpace);
        retryAfterIotlbChange();
    }

    /** After the IOTLB changed: start rings that waited for their ring areas, resume rings that missed. */
    private void retryAfterIotlbChange() throws IOException {
        for (Vring v : rings) {
            if (v.waitingStart) {
                EventFd kick = v.kick;
                v.waitingStart = false;
                startRing(v, kick);
            } else if (v.iotlbMiss) {
                v.worker.execute(() -> {
                    v.iotlbMiss = false;
                    runRing(v);
                });
            }
        }
    }

    /**
     * A ring touched an IOVA the IOTLB does not map: ask the front-end (IOTLB_MSG miss on the back-end
     * channel, sent by the call sender so that the worker never blocks) and wait for its update.
     */
    void iotlbMissed(Vring v, long iova) {
        v.iotlbMiss = true;
        Thread sender = callSender;
        if (sender == null || backendWriter == null) {
            LOG.log(System.Logger.Level.WARNING, "ring {0} missed IOVA 0x{1} and there is no back-end channel "
                    + "(SET_BACKEND_REQ_FD) to ask for it: waiting for an IOTLB update", v.index(), Long.toHexString(iova));
            return;
        }
        missPending.set(v.index(), iova + 1);
        LockSupport.unpark(sender);
    }

    private void sendIotlbMiss(long iova) throws IOException {
        VhostUserMessageWriter w = backendWriter;
        if (w == null) {
            throw new IOException("IOTLB miss needs the back-end channel");
        }
        synchronized (w) {
            MemorySegment body = w.buffer().asSlice(VhostUserMessageWriter.PAYLOAD_OFFSET, 32);
            body.fill((byte) 0);
            body.set(NATIVE_U64, 0, iova);
            body.set(java.lang.foreign.ValueLayout.JAVA_BYTE, 24, (byte) Iotlb.ACCESS_RW);
            body.set(java.lang.foreign.ValueLayout.JAVA_BYTE, 25, (byte) 1); // VHOST_IOTLB_MISS
            w.sendRequest(BackendRequest.IOTLB_MSG, false, 32, List.of());
        }
    }

    private void setLogBase(MemorySegment p, ReceivedFds fds) throws IOException {
        require(ProtocolFeature.LOG_SHMFD, FrontendRequest.SET_LOG_BASE);
        if (iommu()) {
            // Buffers are addressed by IOVA; the log is by guest-physical page. Translating back is not
            // implemented, so refuse rather than mark the wrong pages.
            fds.take(0).close();
            throw new BackendException(BackendException.UNSUPPORTED,
                    "dirty logging with VIRTIO_F_ACCESS_PLATFORM is not supported");
        }
        long size = p.get(NATIVE_U64, 0);
        long offset = p.get(NATIVE_U64, 8);
        DirtyLog next;
        try (OwnedFd fd = fds.take(0)) {
            if (size <= 0 || size % 8 != 0 || offset < 0 || offset % 8 != 0) {
                throw new BackendException(BackendException.INVALID, "SET_LOG_BASE: size and offset must be positive multiples of 8, size="
                        + Unsigned.hex(size) + ", offset=" + Unsigned.hex(offset));
            }
            requireFdCovers(fd, offset, size, "SET_LOG_BASE");
            next = DirtyLog.map(fd, offset, size, DirtyLog.DEFAULT_PAGE_SIZE);
        }
        DirtyLog old = log;
        log = next;
        for (Vring v : rings) {
            v.worker.awaitOnLoop(() -> applyDirtyLog(v));
        }
        if (old != null) {
            old.close();
        }
        // SET_LOG_BASE always replies (u64 0) once the log is in use.
        replyU64(FrontendRequest.SET_LOG_BASE, 0);
    }

    private void applyDirtyLog(Vring v) {
        if (v.queue == null) {
            return;
        }
        boolean logging = (negotiatedFeatures & LOG_ALL) != 0 && log != null;
        v.queue.setDirtyLog(logging ? log : null, v.logUsed ? v.logGuestAddr : -1);
    }

    // ---- rings ----

    private void requireStopped(Vring v, FrontendRequest r) throws BackendException {
        if (v.started) {
            throw new BackendException(BackendException.INVALID, r.specName() + " on ring " + v.index()
                    + " while it is started (stop it with GET_VRING_BASE first)");
        }
    }

    private void setVringNum(MemorySegment p) throws BackendException {
        Vring v = ringAt(Integer.toUnsignedLong(p.get(NATIVE_U32, 0)), FrontendRequest.SET_VRING_NUM);
        requireStopped(v, FrontendRequest.SET_VRING_NUM);
        long num = Integer.toUnsignedLong(p.get(NATIVE_U32, 4));
        boolean packed = (negotiatedFeatures & VirtioFeature.RING_PACKED.mask()) != 0;
        if (num < 1 || num > device.maxQueueSize() || (!packed && Long.bitCount(num) != 1)) {
            throw new BackendException(BackendException.INVALID, "SET_VRING_NUM: ring " + v.index() + " size must be "
                    + (packed ? "1.." : "a power of two up to ") + device.maxQueueSize() + ", num=" + num);
        }
        v.size = (int) num;
    }

    private void setVringAddr(MemorySegment p) throws IOException {
        Vring v = ringAt(Integer.toUnsignedLong(p.get(NATIVE_U32, 0)), FrontendRequest.SET_VRING_ADDR);
        requireStopped(v, FrontendRequest.SET_VRING_ADDR);
        if (v.size == 0) {
            throw new BackendException(BackendException.INVALID, "SET_VRING_ADDR before SET_VRING_NUM on ring " + v.index());
        }
        long flags = Integer.toUnsignedLong(p.get(NATIVE_U32, 4));
        long desc = p.get(NATIVE_U64, 8);
        long used = p.get(NATIVE_U64, 16);
        long avail = p.get(NATIVE_U64, 24);
        long logAddr = p.get(NATIVE_U64, 32);
        GuestMemory mem = memory.current();
        if (mem.regionCount() == 0) {
            throw new BackendException(BackendException.INVALID, "SET_VRING_ADDR on ring " + v.index() + " before any memory table");
        }
        boolean packed = (negotiatedFeatures & VirtioFeature.RING_PACKED.mask()) != 0;
        long n = v.size;
        long descBytes = 16 * n;
        long availBytes = packed ? 4 : 6 + 2 * n;
        long usedBytes = packed ? 4 : 6 + 8 * n;
        if (iommu()) {
            // I/O virtual addresses: translated through the IOTLB when the ring starts (misses are asked for).
            v.descUserAddr = desc;
            v.availUserAddr = avail;
            v.usedUserAddr = used;
        } else if (negotiated(ProtocolFeature.GPA_ADDRESSES)) {
            // Addresses are guest-physical already: check they lie in memory.
            mem.slice(desc, descBytes);
            mem.slice(avail, availBytes);
            mem.slice(used, usedBytes);
            v.descUserAddr = desc;
            v.availUserAddr = avail;
            v.usedUserAddr = used;
        } else {
            v.descUserAddr = mem.userToGpa(desc, descBytes);
            v.availUserAddr = mem.userToGpa(avail, availBytes);
            v.usedUserAddr = mem.userToGpa(used, usedBytes);
        }
        v.logUsed = (flags & 1) != 0;
        v.logGuestAddr = logAddr;
        v.addressesSet = true;
    }

    private void setVringBase(MemorySegment p) throws BackendException {
        Vring v = ringAt(Integer.toUnsignedLong(p.get(NATIVE_U32, 0)), FrontendRequest.SET_VRING_BASE);
        requireStopped(v, FrontendRequest.SET_VRING_BASE);
        long num = Integer.toUnsignedLong(p.get(NATIVE_U32, 4));
        boolean packed = (negotiatedFeatures & VirtioFeature.RING_PACKED.mask()) != 0;
        if (packed) {
            v.baseAvail = (int) (num & 0x7fff);
            v.baseAvailWrap = (num & 0x8000) != 0;
            if ((num >>> 16) == 0) {
                v.baseUsed = v.baseAvail;
                v.baseUsedWrap = v.baseAvailWrap;
            } else {
                v.baseUsed = (int) ((num >>> 16) & 0x7fff);
                v.baseUsedWrap = (num & 0x8000_0000L) != 0;
            }
        } else {
            if (num > 0xffff) {
                throw new BackendException(BackendException.INVALID, "SET_VRING_BASE: split ring index is 16 bits, num=" + num);
            }
            v.baseAvail = (int) num;
            v.baseUsed = (int) num;
        }
    }

    private void getVringBase(FrontendRequest r, MemorySegment p) throws IOException {
        Vring v = ringAt(Integer.toUnsignedLong(p.get(NATIVE_U32, 0)), r);
        long value = stopRing(v);
        MemorySegment body = replyBody(8);
        body.set(NATIVE_U32, 0, v.index());
        body.set(NATIVE_U32, 4, (int) value);
        sendReply(r, 8, List.of());
    }

    /** Stops a ring (quiescing its worker) and returns its vring base word. */
    private long stopRing(Vring v) {
        if (v.waitingStart) {
            // Never started (its ring areas were never mapped): nothing ran, the base is what was set.
            v.waitingStart = false;
        }
        long[] base = new long[1];
        boolean packed = (negotiatedFeatures & VirtioFeature.RING_PACKED.mask()) != 0;
        v.worker.awaitOnLoop(() -> {
            if (v.kickRegistration != null) {
                v.kickRegistration.cancel();
                v.kickRegistration = null;
            }
            if (v.queue != null && v.started) {
                QueueState state = v.queue.exportState();
                base[0] = packed ? state.packedVringBase() : state.nextAvail();
                v.baseAvail = state.nextAvail();
                v.baseUsed = state.nextUsed();
                v.baseAvailWrap = state.availWrapCounter();
                v.baseUsedWrap = state.usedWrapCounter();
            } else {
                base[0] = packed ? ((v.baseAvail & 0x7fffL) | (v.baseAvailWrap ? 0x8000 : 0)
                        | ((v.baseUsed & 0x7fffL) << 16) | (v.baseUsedWrap ? 0x8000_0000L : 0)) : v.baseAvail;
            }
            boolean wasStarted = v.started;
            v.started = false;
            if (wasStarted) {
                device.queueStopped(v);
            }
        });
        stopPoller(v);
        if (v.kick != null) {
            v.kick.close();
            v.kick = null;
        }
        // A stopped ring sends nothing: drop an in-band call still waiting for the call sender.
        callPending.set(v.index(), 0);
        return base[0];
    }

    private void setVringKick(MemorySegment p, ReceivedFds fds) throws IOException {
        long value = p.get(NATIVE_U64, 0);
        Vring v = ringAt(VringFdIndex.index(value), FrontendRequest.SET_VRING_KICK);
        if (v.started || v.waitingStart) {
            stopRing(v);
        }
        EventFd kick = VringFdIndex.noFd(value) ? null : EventFd.adopt(fds.take(0));
        try {
            startRing(v, kick);
        } catch (IOException | RuntimeException e) {
            if (kick != null) {
                kick.close();
            }
            v.kick = null;
            throw e;
        }
    }

    private void startRing(Vring v, EventFd kick) throws IOException {
        if (!v.addressesSet || v.size == 0) {
            throw new BackendException(BackendException.INVALID, "SET_VRING_KICK on ring " + v.index()
                    + " before its size and addresses were set");
        }
        GuestMemory mem = ringSpace();
        boolean packed = (negotiatedFeatures & VirtioFeature.RING_PACKED.mask()) != 0;
        if (iommu()) {
            long missing = firstMissingRingArea(v, mem, packed);
            if (missing != -1) {
                // The ring areas are not mapped yet: ask, and start when the IOTLB update arrives.
                v.kick = kick;
                v.waitingStart = true;
                iotlbMissed(v, missing);
                v.iotlbMiss = false; // the start retry covers it
                return;
            }
        }
        long queueFeatures = negotiatedFeatures & (QueueConfig.F_EVENT_IDX | QueueConfig.F_INDIRECT_DESC
                | QueueConfig.F_IN_ORDER | QueueConfig.F_RING_PACKED);
        QueueConfig config = new QueueConfig("vring " + v.index(), v.size, v.descUserAddr, v.availUserAddr,
                v.usedUserAddr, queueFeatures);
        DeviceQueue queue = packed ? new PackedQueue(config.name()) : new SplitQueue(config.name());
        int nextAvail = v.baseAvail;
        int nextUsed = v.baseUsed;
        boolean availWrap = v.baseAvailWrap;
        int[] resubmit = new int[0];
        long counter = 0;
        boolean tracking = inflight != null && v.index() < inflight.queueCount() && inflight.queueSize() >= v.size
                && inflight.isPacked() == packed;
        if (tracking && inflight.isValid(v.index()) && inflight.queueSize() == v.size) {
            if (packed) {
                int[] pending = inflight.inFlightPacked(v.index());
                if (pending.length > 0) {
                    // A new packed queue object cannot rebuild chains from ids alone (PackedQueue.resubmit
                    // re-delivers only chains the same object holds). With in-order completion the in-flight
                    // chains still sit, untouched, from the used position on: replay them from the ring, after
                    // checking that they are exactly the logged ones (not overwritten by used descriptors).
                    checkPackedReplay(v, mem, pending);
                    LOG.log(System.Logger.Level.INFO, "ring {0}: replaying {1} in-flight request(s) from the used position",
                            v.index(), pending.length);
                    nextAvail = v.baseUsed;
                    availWrap = v.baseUsedWrap;
                }
            } else {
                // The used index as the guest sees it: offset 2 of the used ring.
                int ringUsed = Short.toUnsignedInt(mem.slice(v.usedUserAddr + 2, 2).get(NATIVE_U16, 0));
                InflightRegion.Recovery recovery = inflight.recoverSplit(v.index(), ringUsed);
                nextAvail = recovery.nextAvail();
                nextUsed = recovery.nextUsed();
                resubmit = recovery.resubmit();
                counter = recovery.lastCounter();
            }
        }
        QueueState state = new QueueState(v.size, v.descUserAddr, v.availUserAddr, v.usedUserAddr, nextAvail, nextUsed,
                packed && availWrap, packed && v.baseUsedWrap, config.eventIdx());
        queue.importState(config, state, mem);
        if (resubmit.length > 0) {
            LOG.log(System.Logger.Level.INFO, "ring {0}: resubmitting {1} request(s) from the inflight log",
                    v.index(), resubmit.length);
            queue.resubmit(resubmit);
        }
        if (tracking) {
            inflight.prepare(v.index(), negotiatedFeatures);
            queue.setObserver(inflight.tracker(v.index(), counter));
        }
        queue.setMissesRecoverable(iommu());
        v.queue = queue;
        v.memory = mem;
        v.broken = false;
        v.kick = kick;
        applyDirtyLog(v);
        v.worker.awaitOnLoop(() -> {
            v.started = true;
            device.queueStarted(v);
        });
        if (kick != null) {
            v.kickRegistration = v.worker.add(kick.owner(), events -> {
                kick.drain();
                runRing(v);
            });
        } else {
            startPoller(v);
        }
        // Work queued before the ring started (or a kick that came before enable) is not lost.
        v.worker.execute(() -> runRing(v));
    }

    /** {@return the first IOVA of a ring area the space does not hold, or -1 when all are there} */
    private static long firstMissingRingArea(Vring v, GuestMemory space, boolean packed) {
        long n = v.size;
        long[][] areas = {
            {v.descUserAddr, 16 * n},
            {v.availUserAddr, packed ? 4 : 6 + 2 * n},
            {v.usedUserAddr, packed ? 4 : 6 + 8 * n}
        };
        for (long[] area : areas) {
            if (!space.contains(area[0], area[1])) {
                long at = area[0];
                while (at < area[0] + area[1] && space.contains(at, 1)) {
                    at++;
                }
                return at;
            }
        }
        return -1;
    }

    /**
     * Checks that the packed ring holds, from the used position on, available chains whose buffer ids are
     * exactly {@code pending} (VIRTIO 1.x §2.8: a chain is consecutive descriptors linked by NEXT, its id in
     * the last one; AVAIL equal to the wrap counter and USED different mark an available descriptor).
     */
    private static void checkPackedReplay(Vring v, GuestMemory mem, int[] pending) throws IOException {
        int size = v.size;
        MemorySegment ring = mem.slice(v.descUserAddr, 16L * size);
        boolean[] expected = new boolean[size];
        for (int id : pending) {
            expected[id] = true;
        }
        int slot = v.baseUsed;
        boolean wrap = v.baseUsedWrap;
        if (slot >= size) {
            throw new BackendException(BackendException.INVALID, "ring " + v.index() + ": used position " + slot
                    + " outside a packed ring of " + size);
        }
        int walked = 0;
        for (int n = 0; n < pending.length; n++) {
            int id = -1;
            boolean more = true;
            while (more) {
                int flags = Short.toUnsignedInt(ring.get(LE_U16, 16L * slot + 14));
                boolean avail = (flags & (1 << 7)) != 0;
                boolean used = (flags & (1 << 15)) != 0;
                if (avail != wrap || used == wrap || ++walked > size) {
                    throw new BackendException(BackendException.INVALID, "ring " + v.index() + ": cannot replay "
                            + pending.length + " in-flight request(s) of a packed ring: slot " + slot
                            + " is no longer an available descriptor (requests completed out of order), flags=0x"
                            + Integer.toHexString(flags));
                }
                more = (flags & 1) != 0;
                id = Short.toUnsignedInt(ring.get(LE_U16, 16L * slot + 12));
                if (++slot == size) {
                    slot = 0;
                    wrap = !wrap;
                }
            }
            if (id >= size || !expected[id]) {
                throw new BackendException(BackendException.INVALID, "ring " + v.index() + ": the chain at the used position"
                        + " has buffer id " + id + ", which the inflight log does not hold");
            }
            expected[id] = false;
        }
    }

    private void startPoller(Vring v) {
        if (options.busyPoll()) {
            v.poller = () -> runRing(v);
            v.worker.addPoller(v.poller);
            return;
        }
        // The front-end will not kick this ring: poll it every 50 microseconds.
        Runnable task = () -> runRing(v);
        Thread t = Thread.ofPlatform().daemon(true).name("vhost-user-poll-" + v.index()).start(() -> {
            while (!Thread.currentThread().isInterrupted() && v.started && !closed) {
                v.worker.execute(task);
                LockSupport.parkNanos(50_000);
            }
        });
        pollers[v.index()] = t;
    }

    private void stopPoller(Vring v) {
        if (v.poller != null) {
            v.worker.removePoller(v.poller);
            v.poller = null;
        }
        Thread t = pollers[v.index()];
        if (t != null) {
            t.interrupt();
            pollers[v.index()] = null;
        }
    }

    /** Runs the device on a ring; on the ring's worker thread. */
    void runRing(Vring v) {
        if (!v.started || v.broken || closed) {
            return;
        }
        if (!v.enabled) {
            v.pendingKick = true;
            return;
        }
        v.pendingKick = false;
        if (v.iotlbMiss) {
            return; // waiting for the IOTLB update that resumes this ring
        }
        try {
            device.processQueue(v);
        } catch (IOException | RuntimeException e) {
            if (!v.iotlbMiss) {
                v.markBroken(e);
            }
        }
    }

    private void setVringCall(MemorySegment p, ReceivedFds fds, boolean errorFd) throws IOException {
        long value = p.get(NATIVE_U64, 0);
        FrontendRequest r = errorFd ? FrontendRequest.SET_VRING_ERR : FrontendRequest.SET_VRING_CALL;
        Vring v = ringAt(VringFdIndex.index(value), r);
        EventFd next = VringFdIndex.noFd(value) ? null : EventFd.adopt(fds.take(0));
        v.worker.awaitOnLoop(() -> {
            EventFd old = errorFd ? v.err : v.call;
            if (errorFd) {
                v.err = next;
            } else {
                v.call = next;
                v.inbandCall = next == null && negotiated(ProtocolFeature.INBAND_NOTIFICATIONS);
            }
            if (old != null) {
                old.close();
            }
        });
    }

    /**
     * Whether SET_VRING_ENABLE may be handled now. vhost-user.rst: it "should be sent only when
     * VHOST_USER_F_PROTOCOL_FEATURES has been negotiated", and GET/SET_PROTOCOL_FEATURES may come before
     * SET_FEATURES. QEMU (7.2, vhost-user-net) treats the bit as in force once the back-end offered it and
     * the protocol features were exchanged, and sends SET_VRING_ENABLE before any SET_FEATURES; DPDK's vhost
     * library applies SET_VRING_ENABLE without looking at the features; rust-vmm's back-end requires the bit
     * acknowledged. Accepted here: before SET_FEATURES once SET_PROTOCOL_FEATURES came (this back-end always
     * offers F_PROTOCOL_FEATURES), after it when SET_FEATURES kept the bit. A SET_FEATURES without the bit
     * then enables every ring, as the specification says, whatever an earlier SET_VRING_ENABLE chose.
     */
    private boolean vringEnableAllowed() {
        return featuresSet ? (negotiatedFeatures & PROTOCOL_FEATURES) != 0 : protocolFeaturesSet;
    }

    private void setVringEnable(MemorySegment p) throws BackendException {
        if (!vringEnableAllowed()) {
            throw new BackendException(BackendException.INVALID, featuresSet
                    ? "SET_VRING_ENABLE needs F_PROTOCOL_FEATURES, which SET_FEATURES did not acknowledge"
                    : "SET_VRING_ENABLE before SET_FEATURES needs the protocol features exchanged (SET_PROTOCOL_FEATURES)");
        }
        Vring v = ringAt(Integer.toUnsignedLong(p.get(NATIVE_U32, 0)), FrontendRequest.SET_VRING_ENABLE);
        long num = Integer.toUnsignedLong(p.get(NATIVE_U32, 4));
        if (num > 1) {
            throw new BackendException(BackendException.INVALID, "SET_VRING_ENABLE takes 0 or 1, num=" + num);
        }
        boolean enable = num == 1;
        v.worker.awaitOnLoop(() -> {
            boolean changed = v.enabled != enable;
            v.enabled = enable;
            if (changed) {
                device.queueEnabled(v, enable);
            }
            if (enable) {
                runRing(v); // a kick that came while disabled is not lost
            }
        });
    }

    void ringBroken(Vring v, Exception cause) {
        LOG.log(System.Logger.Level.WARNING, "ring " + v.index() + " is broken: " + cause.getMessage());
        EventFd e = v.err;
        if (e != null) {
            try {
                e.signal();
            } catch (NativeException ignored) {
                // the front-end closed it
            }
        }
    }

    // ---- config ----

    private void getConfig(FrontendRequest r, MemorySegment p) throws IOException {
        long offset = Integer.toUnsignedLong(p.get(NATIVE_U32, 0));
        long size = Integer.toUnsignedLong(p.get(NATIVE_U32, 4));
        long flags = Integer.toUnsignedLong(p.get(NATIVE_U32, 8));
        int configSize = device.configSize();
        MemorySegment body = replyBody(12 + size);
        body.set(NATIVE_U32, 0, (int) offset);
        body.set(NATIVE_U32, 8, (int) flags);
        if (!negotiated(ProtocolFeature.CONFIG) || configSize == 0 || offset + size > configSize) {
            // vhost-user.rst: a back-end that cannot serve the read answers with an empty payload.
            LOG.log(System.Logger.Level.WARNING, "GET_CONFIG refused: offset={0} size={1} configSize={2}", offset, size, configSize);
            body.set(NATIVE_U32, 4, 0);
            sendReply(r, 12, List.of());
            return;
        }
        body.set(NATIVE_U32, 4, (int) size);
        device.readConfig((int) offset, body.asSlice(12, size));
        sendReply(r, (int) (12 + size), List.of());
    }

    private void setConfig(FrontendRequest r, MemorySegment p) throws IOException {
        require(ProtocolFeature.CONFIG, r);
        long offset = Integer.toUnsignedLong(p.get(NATIVE_U32, 0));
        long size = Integer.toUnsignedLong(p.get(NATIVE_U32, 4));
        if (offset + size > device.configSize()) {
            throw new BackendException(BackendException.INVALID, "SET_CONFIG outside the configuration space, offset="
                    + offset + ", size=" + size + ", configSize=" + device.configSize());
        }
        deviceCall(r, () -> device.writeConfig((int) offset, p.asSlice(12, size)));
    }

    /**
     * Tells the front-end that the configuration space changed (CONFIG_CHANGE_MSG on the back-end channel).
     *
     * @throws IOException when the channel is missing or the send fails
     */
    public void notifyConfigChanged() throws IOException {
        sendBackendRequest(BackendRequest.CONFIG_CHANGE_MSG, 0, -1);
    }

    /**
     * Asks for an in-band VRING_CALL. Workers never write the back-end channel themselves: a front-end that
     * stops reading it would block the worker, and with it every control message that waits for the
     * worker. The call is marked and the call sender writes it; calls to a ring not yet sent coalesce
     * (VIRTIO: a notification carries no count). Allocates nothing.
     */
    void sendInbandCall(int index) throws IOException {
        Thread sender = callSender;
        if (sender == null || backendWriter == null) {
            throw new IOException("VRING_CALL needs the back-end channel (SET_BACKEND_REQ_FD)");
        }
        callPending.set(index, 1);
        LockSupport.unpark(sender);
    }

    private void startCallSender() {
        if (callSender != null) {
            return;
        }
        callSender = Thread.ofPlatform().daemon(true).name("vhost-user-inband-calls").start(() -> {
            while (!Thread.currentThread().isInterrupted()) {
                boolean sent = false;
                for (int i = 0; i < rings.length; i++) {
                    long miss = missPending.getAndSet(i, 0);
                    if (miss != 0) {
                        sent = true;
                        try {
                            sendIotlbMiss(miss - 1);
                        } catch (IOException e) {
                            LOG.log(System.Logger.Level.DEBUG, "IOTLB miss for ring {0} not sent: {1}", i, e.getMessage());
                        }
                    }
                    if (callPending.getAndSet(i, 0) != 0) {
                        sent = true;
                        try {
                            sendBackendRequest(BackendRequest.VRING_CALL, 8, i);
                        } catch (IOException e) {
                            LOG.log(System.Logger.Level.DEBUG, "in-band call for ring {0} not sent: {1}", i, e.getMessage());
                        }
                    }
                }
                if (!sent) {
                    LockSupport.park(this);
                }
            }
        });
    }

    /** Stops the call sender; the back-end channel must be shut down first (it wakes a blocked send). */
    private void stopCallSender() {
        Thread t = callSender;
        callSender = null;
        if (t != null) {
            t.interrupt();
            try {
                t.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        for (int i = 0; i < rings.length; i++) {
            callPending.set(i, 0);
            missPending.set(i, 0);
        }
    }

    private void sendBackendRequest(BackendRequest r, int size, int ringIndex) throws IOException {
        VhostUserMessageWriter w = backendWriter;
        if (w == null) {
            throw new IOException(r.specName() + " needs the back-end channel (SET_BACKEND_REQ_FD)");
        }
        synchronized (w) {
            if (ringIndex >= 0) {
                MemorySegment body = w.buffer().asSlice(VhostUserMessageWriter.PAYLOAD_OFFSET, 8);
                body.set(NATIVE_U32, 0, ringIndex);
                body.set(NATIVE_U32, 4, 0);
            }
            w.sendRequest(r, false, size, List.of());
        }
    }

    // ---- inflight ----

    private void getInflightFd(FrontendRequest r, MemorySegment p) throws IOException {
        require(ProtocolFeature.INFLIGHT_SHMFD, r);
        int numQueues = Short.toUnsignedInt(p.get(NATIVE_U16, 16));
        int queueSize = Short.toUnsignedInt(p.get(NATIVE_U16, 18));
        if (numQueues < 1 || numQueues > rings.length || queueSize < 1 || queueSize > device.maxQueueSize()) {
            throw new BackendException(BackendException.INVALID, "GET_INFLIGHT_FD: num_queues=" + numQueues
                    + " (1.." + rings.length + "), queue_size=" + queueSize + " (1.." + device.maxQueueSize() + ")");
        }
        boolean packed = (negotiatedFeatures & VirtioFeature.RING_PACKED.mask()) != 0;
        InflightRegion next = InflightRegion.create(numQueues, queueSize, packed);
        if (inflight != null) {
            inflight.close();
        }
        inflight = next;
        MemorySegment body = replyBody(24);
        body.set(NATIVE_U64, 0, next.sizeBytes());
        body.set(NATIVE_U64, 8, 0);
        body.set(NATIVE_U16, 16, (short) numQueues);
        body.set(NATIVE_U16, 18, (short) queueSize);
        sendReply(r, 24, List.of(next.fd()));
    }

    private void setInflightFd(MemorySegment p, ReceivedFds fds) throws IOException {
        require(ProtocolFeature.INFLIGHT_SHMFD, FrontendRequest.SET_INFLIGHT_FD);
        long size = p.get(NATIVE_U64, 0);
        long offset = p.get(NATIVE_U64, 8);
        int numQueues = Short.toUnsignedInt(p.get(NATIVE_U16, 16));
        int queueSize = Short.toUnsignedInt(p.get(NATIVE_U16, 18));
        if (numQueues < 1 || numQueues > rings.length || queueSize < 1 || queueSize > device.maxQueueSize()) {
            throw new BackendException(BackendException.INVALID, "SET_INFLIGHT_FD: num_queues=" + numQueues
                    + ", queue_size=" + queueSize);
        }
        boolean packed = (negotiatedFeatures & VirtioFeature.RING_PACKED.mask()) != 0;
        InflightRegion next;
        try (OwnedFd fd = fds.take(0)) {
            requireFdCovers(fd, offset, InflightRegion.queueRegionBytes(queueSize, packed) * numQueues, "SET_INFLIGHT_FD");
            try {
                next = InflightRegion.map(fd, size, offset, numQueues, queueSize, packed);
            } catch (IllegalArgumentException e) {
                throw new BackendException(BackendException.INVALID, e.getMessage());
            }
        }
        if (inflight != null) {
            inflight.close();
        }
        inflight = next;
    }

    // ---- device state ----

    private void setDeviceStateFd(FrontendRequest r, MemorySegment p, ReceivedFds fds) throws IOException {
        require(ProtocolFeature.DEVICE_STATE, r);
        long direction = Integer.toUnsignedLong(p.get(NATIVE_U32, 0));
        OwnedFd fd = fds.take(0);
        for (Vring v : rings) {
            if (v.started) {
                fd.close();
                throw new BackendException(BackendException.INVALID, "SET_DEVICE_STATE_FD while ring " + v.index() + " is started");
            }
        }
        if (transfer != null && !transfer.isDone()) {
            fd.close();
            throw new BackendException(BackendException.INVALID, "a device-state transfer is already running");
        }
        FdChannel stream = FdChannel.of(fd);
        CompletableFuture<Void> task = new CompletableFuture<>();
        transfer = task;
        transferStream = stream;
        Thread.ofPlatform().daemon(true).name("vhost-user-device-state").start(() -> {
            try (stream) {
                if (direction == 0) {
                    device.saveState(stream);
                } else {
                    device.loadState(stream);
                }
                task.complete(null);
            } catch (Throwable t) {
                LOG.log(System.Logger.Level.WARNING, "device-state " + (direction == 0 ? "save" : "load") + " failed", t);
                task.completeExceptionally(t);
            }
        });
        // Bits 0-7: 0 = success; bit 8: no fd of our own is returned (we use the front-end's).
        replyU64(r, 1L << 8);
    }

    private void checkDeviceState(FrontendRequest r) throws IOException {
        require(ProtocolFeature.DEVICE_STATE, r);
        long result;
        if (transfer == null) {
            result = BackendException.INVALID;
        } else {
            try {
                transfer.get(60, TimeUnit.SECONDS);
                result = 0;
            } catch (Exception e) {
                result = BackendException.IO_ERROR;
            }
            transfer = null;
        }
        replyU64(r, result);
    }

    // ---- reset and teardown ----

    private void resetDevice() {
        for (Vring v : rings) {
            if (v.started) {
                stopRing(v);
            }
            v.worker.awaitOnLoop(() -> {
                forgetRing(v);
                v.enabled = (negotiatedFeatures & PROTOCOL_FEATURES) == 0 && featuresSet;
            });
        }
        status = 0;
        iotlb.clear();
        iovaSpace = GuestMemory.empty();
        device.reset();
    }

    /** Returns a stopped ring to its initial state (size, addresses, base, notifiers); on its worker. */
    private static void forgetRing(Vring v) {
        v.size = 0;
        v.addressesSet = false;
        v.descUserAddr = 0;
        v.availUserAddr = 0;
        v.usedUserAddr = 0;
        v.logUsed = false;
        v.logGuestAddr = 0;
        v.baseAvail = 0;
        v.baseUsed = 0;
        v.baseAvailWrap = true;
        v.baseUsedWrap = true;
        v.queue = null;
        v.broken = false;
        v.pendingKick = false;
        v.iotlbMiss = false;
        if (v.waitingStart && v.kick != null) {
            v.kick.close(); // a ring that never started keeps the kick it was given
            v.kick = null;
        }
        v.waitingStart = false;
        closeNotifiers(v);
    }

    private static void closeNotifiers(Vring v) {
        if (v.call != null) {
            v.call.close();
            v.call = null;
        }
        if (v.err != null) {
            v.err.close();
            v.err = null;
        }
        v.inbandCall = false;
    }

    private void disconnect() {
        // First wake a worker blocked sending on the back-end channel (a front-end that never reads it fills
        // the socket): stopping the rings waits for the workers.
        MessageChannel blocked = backendChannel;
        if (blocked != null) {
            blocked.shutdown();
        }
        stopCallSender();
        for (Vring v : rings) {
            if (v.started) {
                stopRing(v);
            }
            v.worker.awaitOnLoop(() -> {
                // A new front-end starts from a fresh ring: it must not inherit this one's indices.
                forgetRing(v);
                v.enabled = false;
                v.memory = GuestMemory.empty();
            });
        }
        memory.publish(GuestMemory.empty());
        iotlb.clear();
        iovaSpace = GuestMemory.empty();
        if (log != null) {
            log.close();
            log = null;
        }
        if (logEventFd != null) {
            logEventFd.close();
            logEventFd = null;
        }
        if (inflight != null) {
            inflight.close();
            inflight = null;
        }
        MessageChannel b = backendChannel;
        backendChannel = null;
        backendWriter = null;
        if (b != null) {
            b.close();
        }
        if (channel != null) {
            channel.close();
            channel = null;
        }
        negotiatedFeatures = 0;
        featuresSet = false;
        protocolFeatures = 0;
        protocolFeaturesSet = false;
        owner = false;
        status = 0;
        if (transfer != null) {
            transfer.cancel(true);
            transfer = null;
        }
        if (transferStream != null) {
            transferStream.close(); // ends a transfer a vanished front-end left blocked, and frees its fd
            transferStream = null;
        }
        device.reset();
    }

    /** Closes the connection if one is served, and stops the worker threads. */
    @Override
    public void close() {
        closed = true;
        MessageChannel c = channel;
        if (c != null) {
            c.shutdown();
        }
        MessageChannel b = backendChannel;
        if (b != null) {
            b.shutdown();
        }
        for (EventLoop w : workers) {
            w.close();
        }
    }

    // ---- replies ----

    private MemorySegment replyBody(long size) {
        return writer.buffer().asSlice(VhostUserMessageWriter.PAYLOAD_OFFSET, size);
    }

    private void sendReply(VhostUserRequest r, int size, List<OwnedFd> fds) throws IOException {
        writer.sendReply(r, size, fds);
    }

    private void replyU64(VhostUserRequest r, long value) throws IOException {
        writer.sendReplyU64(r, value);
    }

    private void sendAck(long requestCode, long status) throws IOException {
        replyBody(8).set(NATIVE_U64, 0, status);
        writer.sendUnchecked(requestCode, VhostUserHeader.VERSION | VhostUserHeader.REPLY_FLAG, 8, List.of());
    }
}
