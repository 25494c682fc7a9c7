package dev.outproc.vhost.backend;

import dev.outproc.core.event.EventLoop;
import dev.outproc.core.fd.NativeException;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.MappingBudget;
import dev.outproc.core.transport.PeerAllowList;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.core.virtqueue.QueueConfig;
import dev.outproc.vhost.connection.VhostUserMessageReader;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.vhost.message.VhostUserFeature;

import java.io.IOException;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Objects;
import java.util.Set;

/**
 * Runs the vhost-user protocol for one {@link VhostUserDevice} over one front-end connection at a time:
 * negotiation, memory table, rings, notifications, dirty logging, inflight tracking, configuration
 * space, status and device-state transfer. {@link VhostUserServer} accepts connections and runs one
 * back-end after another.
 *
 * <h2 id="layout">Layout</h2>
 * This class is the facade a device author meets: the device, its tuning, its rings and worker threads,
 * which live as long as the back-end. Everything a front-end sets up lives in a per-connection session,
 * created by {@link #serve} and dropped when the connection ends; its dispatcher decodes each payload
 * with the {@code dev.outproc.vhost.message} flyweights and hands it to the handler of its concern
 * (memory table, dirty log, IOTLB, ring control, inflight recovery, back-end channel, device state,
 * configuration).
 *
 * <h2 id="checks">Untrusted input</h2>
 * Every message is checked in two layers: syntax by {@link VhostUserMessageReader} (framing, exact payload
 * sizes, fd counts, reserved fields) and meaning in the handlers (negotiated features, ring and memory
 * state, value ranges). A refused request gets a non-zero REPLY_ACK status when the front-end asked for
 * one; otherwise, or when the stream cannot be trusted any more, the connection closes. Either way every
 * fd that arrived is closed, and the device's rings stop.
 *
 * <p>Shared memory (guest regions, the inflight log, the dirty log) is sealed against shrinking before it
 * is mapped ({@code F_SEAL_SHRINK}, where the file allows sealing), because a file truncated under a mapping
 * raises {@code SIGBUS} on the next access and that aborts the whole JVM. A file that cannot be sealed
 * follows {@link Options#unsealableMemory()}. The bytes mapped for guest regions are capped by
 * {@link Options#mappingBudgetBytes()}. A wait of the connection thread on a worker ends after
 * {@link Options#stallTimeout()} with that connection closed; any {@link Throwable} from a device's ring
 * work breaks the ring and closes that connection only.
 *
 * <h2 id="threads">Threads</h2>
 * {@link #serve} reads and handles control messages on the calling thread. Ring work runs on worker
 * event loops; a control message that changes memory or a ring first waits on the ring's worker, so
 * the device never sees a change in the middle of {@link VhostUserDevice#processQueue}.
 *
 * <h2 id="logging">Logging</h2>
 * Through {@link System.Logger}, under this class's name: negotiation (features acknowledged, protocol
 * features, memory tables, rings starting, stopping, enabled) at {@code DEBUG} (java.util.logging
 * {@code FINE}), every message at {@code TRACE} ({@code FINER}), refusals and broken rings at
 * {@code WARNING}, inflight replays at {@code INFO}. Nothing below {@code INFO} is shown by default.
 */
public final class VhostUserBackend implements AutoCloseable {
    /** Memory slots offered with CONFIGURE_MEM_SLOTS (the value libvhost-user and rust-vmm use). */
    public static final int MAX_MEM_SLOTS = 509;
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

    /** What a back-end does with a shared-memory fd that cannot be sealed against shrinking. */
    public enum UnsealableMemory {
        /**
         * Refuse the request that brought it (an error reply or a closed connection). Safe: no peer can
         * crash the process by truncating the file under our mapping. DPDK's virtio-user sends memfds
         * without sealing allowed ({@code F_SEAL_SEAL} only), so it is refused too.
         */
        REFUSE,
        /**
         * Map it and log a warning naming the request. Residual risk: the peer that holds the file can
         * shrink it later, and the next access to a page past its new end raises {@code SIGBUS}, which
         * aborts the whole JVM (every connection of the process). Trust the peer, or choose {@link #REFUSE}.
         */
        ACCEPT_WITH_WARNING
    }

    /**
     * Tuning and limits of a back-end; start from {@link #defaults()} and change what you need with the
     * {@code with...} methods.
     *
     * @param workerThreads the most worker event loops; a back-end starts {@code min(workerThreads, queueCount)}
     *        of them and spreads its rings over them round-robin
     * @param busyPoll whether workers spin instead of sleeping in epoll (lower latency, one busy core each)
     * @param unsealableMemory what to do with a memory fd that cannot be sealed against shrinking
     * @param mappingBudgetBytes the most bytes of front-end files mapped at once (guest regions, inflight
     *        log, dirty log), across connections; a request that would exceed it is refused
     * @param stallTimeout the longest the connection thread waits for a worker (a ring change, a stop) or a
     *        device-state transfer; a worker that does not answer in time ends the connection
     * @param handshakeTimeout how long a connected front-end may stay silent before its first message
     *        ({@link Duration#ZERO}: forever)
     * @param socketMode the permissions of a socket file the server creates
     * @param peers who may connect (checked with {@code SO_PEERCRED} before any message is read)
     */
    public record Options(int workerThreads, boolean busyPoll, UnsealableMemory unsealableMemory,
                          long mappingBudgetBytes, Duration stallTimeout, Duration handshakeTimeout,
                          Set<PosixFilePermission> socketMode, PeerAllowList peers) {
        /** Default {@link #mappingBudgetBytes}: 64 TiB, far above any guest and far below the 128 TiB user address space. */
        public static final long DEFAULT_MAPPING_BUDGET = 64L << 40;
        /** Default {@link #stallTimeout}. */
        public static final Duration DEFAULT_STALL_TIMEOUT = Duration.ofSeconds(10);
        /** Default {@link #handshakeTimeout}. */
        public static final Duration DEFAULT_HANDSHAKE_TIMEOUT = Duration.ofSeconds(30);
        /** Default {@link #socketMode}: 0600, the owner only. */
        public static final Set<PosixFilePermission> DEFAULT_SOCKET_MODE = PosixFilePermissions.fromString("rw-------");

        /** Checks the values. */
        public Options {
            if (workerThreads < 1) {
                throw new IllegalArgumentException("workerThreads must be >= 1, workerThreads=" + workerThreads);
            }
            Objects.requireNonNull(unsealableMemory, "unsealableMemory");
            if (mappingBudgetBytes <= 0) {
                throw new IllegalArgumentException("mappingBudgetBytes must be > 0, mappingBudgetBytes=" + mappingBudgetBytes);
            }
            if (stallTimeout.isNegative() || stallTimeout.isZero()) {
                throw new IllegalArgumentException("stallTimeout must be > 0, stallTimeout=" + stallTimeout);
            }
            if (handshakeTimeout.isNegative() || handshakeTimeout.toMillis() > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("handshakeTimeout must be 0.." + Integer.MAX_VALUE
                        + " ms, handshakeTimeout=" + handshakeTimeout);
            }
            socketMode = Set.copyOf(socketMode);
            Objects.requireNonNull(peers, "peers");
        }

        /**
         * Tuning with every limit at its default.
         *
         * @param workerThreads the most worker event loops
         * @param busyPoll whether workers spin
         */
        public Options(int workerThreads, boolean busyPoll) {
            this(workerThreads, busyPoll, UnsealableMemory.ACCEPT_WITH_WARNING, DEFAULT_MAPPING_BUDGET,
                    DEFAULT_STALL_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_SOCKET_MODE, PeerAllowList.anyone());
        }

        /**
         * {@return as many workers as processors (so a back-end runs one per queue, up to the processor
         * count), sleeping in epoll; memory that cannot be sealed accepted with a warning; sockets 0600,
         * any peer the mode admits}
         */
        public static Options defaults() {
            return new Options(Math.max(1, Runtime.getRuntime().availableProcessors()), false);
        }

        /**
         * {@return these options with another policy for unsealable memory}
         *
         * @param policy the policy
         */
        public Options withUnsealableMemory(UnsealableMemory policy) {
            return new Options(workerThreads, busyPoll, policy, mappingBudgetBytes, stallTimeout, handshakeTimeout,
                    socketMode, peers);
        }

        /**
         * {@return these options with another mapping budget}
         *
         * @param bytes the most bytes mapped at once
         */
        public Options withMappingBudgetBytes(long bytes) {
            return new Options(workerThreads, busyPoll, unsealableMemory, bytes, stallTimeout, handshakeTimeout,
                    socketMode, peers);
        }

        /**
         * {@return these options with another stall timeout}
         *
         * @param timeout the longest wait for a worker
         */
        public Options withStallTimeout(Duration timeout) {
            return new Options(workerThreads, busyPoll, unsealableMemory, mappingBudgetBytes, timeout, handshakeTimeout,
                    socketMode, peers);
        }

        /**
         * {@return these options with another handshake timeout}
         *
         * @param timeout how long a new front-end may stay silent ({@link Duration#ZERO}: forever)
         */
        public Options withHandshakeTimeout(Duration timeout) {
            return new Options(workerThreads, busyPoll, unsealableMemory, mappingBudgetBytes, stallTimeout, timeout,
                    socketMode, peers);
        }

        /**
         * {@return these options with another socket file mode}
         *
         * @param mode the permissions
         */
        public Options withSocketMode(Set<PosixFilePermission> mode) {
            return new Options(workerThreads, busyPoll, unsealableMemory, mappingBudgetBytes, stallTimeout,
                    handshakeTimeout, mode, peers);
        }

        /**
         * {@return these options with another allow-list}
         *
         * @param allowList who may connect
         */
        public Options withPeers(PeerAllowList allowList) {
            return new Options(workerThreads, busyPoll, unsealableMemory, mappingBudgetBytes, stallTimeout,
                    handshakeTimeout, socketMode, allowList);
        }
    }

    private static final System.Logger LOG = System.getLogger(VhostUserBackend.class.getName());

    private final VhostUserDevice device;
    private final Options options;
    private final EventLoop[] workers;
    private final Vring[] rings;
    private final long offeredFeatures;
    private final long offeredProtocolFeatures;
    private final MappingBudget mappingBudget;
    private volatile Session session;
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
        this.mappingBudget = MappingBudget.of(options.mappingBudgetBytes());
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
        this.offeredFeatures = device.features() | VhostUserFeature.PROTOCOL_FEATURES.mask()
                | VhostUserFeature.LOG_ALL.mask();
        long deviceProtocol = this.device.protocolFeatures() & DEVICE_PROTOCOL_FEATURES;
        if (configSize > 0) {
            deviceProtocol |= ProtocolFeature.CONFIG.mask();
        }
        if (device.migratable()) {
            deviceProtocol |= ProtocolFeature.DEVICE_STATE.mask();
        }
        this.offeredProtocolFeatures = LIBRARY_PROTOCOL_FEATURES | deviceProtocol;
        // Queues of one worker group share a worker (VirtioDevice#workerGroup); groups are spread round robin.
        int[] groups = new int[queues];
        int groupCount = 0;
        for (int i = 0; i < queues; i++) {
            int g = device.workerGroup(i);
            if (g < 0 || g >= queues) {
                throw new IllegalArgumentException("workerGroup must be 0..queueCount-1, queue=" + i + " workerGroup=" + g);
            }
            groups[i] = g;
            groupCount = Math.max(groupCount, g + 1);
        }
        int workerCount = Math.min(groupCount, options.workerThreads());
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
            rings[i] = new Vring(i, workers[groups[i] % workerCount]);
        }
    }

    /** {@return the virtio features offered to front-ends} */
    public long offeredFeatures() {
        return offeredFeatures;
    }

    /** {@return the protocol features offered to front-ends} */
    public long offeredProtocolFeatures() {
        return offeredProtocolFeatures;
    }

    /** {@return the virtio features the front-end acknowledged (0 before SET_FEATURES or without a front-end)} */
    public long negotiatedFeatures() {
        Session s = session;
        return s == null ? 0 : s.negotiatedFeatures();
    }

    /** {@return the protocol features the front-end acknowledged (0 without a front-end)} */
    public long negotiatedProtocolFeatures() {
        Session s = session;
        return s == null ? 0 : s.protocolFeatures();
    }

    /**
     * {@return a ring, for inspection}
     *
     * @param index the ring index
     */
    public Vring ring(int index) {
        return rings[index];
    }

    /** {@return the current guest memory table (empty without a front-end)} */
    public GuestMemory memory() {
        Session s = session;
        return s == null ? GuestMemory.empty() : s.memoryTable().current();
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
        Session created;
        try {
            replaceEndedWorkers();
            created = new Session(this, connection);
        } catch (IOException | RuntimeException e) {
            // A worker still stalled by the last connection, or no thread for a new worker: this one cannot start.
            connection.close();
            throw e;
        }
        try (Session s = created) {
            session = s;
            if (closed) {
                return;
            }
            new Dispatcher(s).run();
        } finally {
            session = null;
        }
    }

    /**
     * Starts a new worker in place of one whose event loop ended (its thread died of something no handler
     * caught, or epoll failed), so that a dead worker costs the connection it served, not every later one:
     * without this, the next front-end's rings would be registered on a loop that never runs them. Between
     * connections only, on the connection thread; the rings that used the old worker move to the new one.
     */
    private void replaceEndedWorkers() throws NativeException {
        for (int i = 0; i < workers.length; i++) {
            EventLoop old = workers[i];
            if (old.isRunning() || closed) {
                continue;
            }
            EventLoop next = EventLoop.start("vhost-user-worker-" + i,
                    options.busyPoll() ? EventLoop.Mode.BUSY_POLL : EventLoop.Mode.BLOCKING);
            workers[i] = next;
            for (Vring ring : rings) {
                if (ring.worker() == old) {
                    ring.replaceWorker(next);
                }
            }
            old.close();
            LOG.log(System.Logger.Level.ERROR, "worker " + i + " had stopped; a new one serves its rings from this connection on");
        }
    }

    /**
     * Tells the front-end that the configuration space changed (CONFIG_CHANGE_MSG on the back-end channel).
     *
     * @throws IOException when no front-end is connected, the channel is missing or the send fails
     */
    public void notifyConfigChanged() throws IOException {
        Session s = session;
        if (s == null) {
            throw new IOException("CONFIG_CHANGE_MSG needs a connected front-end");
        }
        s.backendChannel().configChanged();
    }

    /** Closes the connection if one is served, and stops the worker threads. */
    @Override
    public void close() {
        closed = true;
        Session s = session;
        if (s != null) {
            s.shutdown();
        }
        for (EventLoop w : workers) {
            w.close();
        }
    }

    VhostUserDevice device() {
        return device;
    }

    Options options() {
        return options;
    }

    MappingBudget mappingBudget() {
        return mappingBudget;
    }

    Vring[] rings() {
        return rings;
    }

    EventLoop[] workers() {
        return workers;
    }

    boolean isClosed() {
        return closed;
    }

    /** {@return whether a connection is being served (its session is released before this turns false)} */
    boolean isServing() {
        return session != null;
    }
}
