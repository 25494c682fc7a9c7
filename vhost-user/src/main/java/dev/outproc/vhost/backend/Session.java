package dev.outproc.vhost.backend;

import dev.outproc.core.event.EventLoop;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.vhost.connection.VhostUserMessageReader;
import dev.outproc.vhost.connection.VhostUserMessageWriter;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.MessageStream;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.vhost.message.U64Payload;
import dev.outproc.vhost.message.VhostUserFeature;
import dev.outproc.vhost.message.VhostUserHeader;
import dev.outproc.vhost.message.VhostUserRequest;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;

import static java.lang.System.Logger.Level.ERROR;
import static java.lang.System.Logger.Level.DEBUG;
import static java.lang.System.Logger.Level.WARNING;

/**
 * Everything one front-end connection set up: the negotiated features, the handlers and their state
 * (memory table, dirty log, IOTLB, rings, inflight log, back-end channel, device-state transfer), and the
 * reply path. Created when a front-end connects and closed when it leaves, which releases every mapping,
 * fd and thread it held; the next front-end gets a new one, so nothing is reset by hand.
 *
 * <p>Owned by the connection thread; the handlers' notes say what workers read.
 */
final class Session implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VhostUserBackend.class.getName());
    private static final long PROTOCOL_FEATURES = VhostUserFeature.PROTOCOL_FEATURES.mask();
    /** How long each teardown step waits for a worker that already missed the stall timeout. */
    private static final Duration TEARDOWN_WAIT = Duration.ofMillis(100);

    private final VhostUserBackend backend;
    private final MessageChannel channel;
    private final VhostUserMessageReader reader;
    private final VhostUserMessageWriter writer;
    private final U64Payload.Encoder u64 = new U64Payload.Encoder();
    private final MemoryTable memoryTable;
    private final DirtyLogging dirtyLog;
    private final IovaSpace iova;
    private final RingControl rings;
    private final InflightRecovery inflight;
    private final BackendChannel backendChannel;
    private final DeviceStateTransferHandler deviceState;
    private final ConfigAccess config;

    /** Written on the connection thread; read by workers (Vring.negotiatedFeatures). */
    private volatile long negotiatedFeatures;
    private boolean featuresSet;
    private long protocolFeatures;
    private boolean protocolFeaturesSet;
    private int status;
    /** A worker missed the stall timeout: the connection is ending, and teardown waits only briefly. */
    private volatile boolean stalled;

    Session(VhostUserBackend backend, MessageChannel channel) {
        this.backend = backend;
        this.channel = channel;
        this.reader = new VhostUserMessageReader(channel, MessageStream.FRONTEND_REQUESTS);
        this.writer = new VhostUserMessageWriter(channel);
        this.memoryTable = new MemoryTable(this);
        this.dirtyLog = new DirtyLogging(this);
        this.iova = new IovaSpace(this);
        this.rings = new RingControl(this);
        this.inflight = new InflightRecovery(this);
        this.backendChannel = new BackendChannel(this);
        this.deviceState = new DeviceStateTransferHandler(this);
        this.config = new ConfigAccess(this);
        rings.attachFresh(false);
    }

    VhostUserBackend backend() {
        return backend;
    }

    VhostUserDevice device() {
        return backend.device();
    }

    Vring[] vrings() {
        return backend.rings();
    }

    VhostUserMessageReader reader() {
        return reader;
    }

    MemoryTable memoryTable() {
        return memoryTable;
    }

    DirtyLogging dirtyLog() {
        return dirtyLog;
    }

    IovaSpace iova() {
        return iova;
    }

    RingControl rings() {
        return rings;
    }

    InflightRecovery inflight() {
        return inflight;
    }

    BackendChannel backendChannel() {
        return backendChannel;
    }

    DeviceStateTransferHandler deviceState() {
        return deviceState;
    }

    ConfigAccess config() {
        return config;
    }

    // ---- negotiation ----

    long negotiatedFeatures() {
        return negotiatedFeatures;
    }

    long protocolFeatures() {
        return protocolFeatures;
    }

    boolean packed() {
        return (negotiatedFeatures & VirtioFeature.RING_PACKED.mask()) != 0;
    }

    boolean negotiated(ProtocolFeature f) {
        return (protocolFeatures & f.mask()) != 0;
    }

    void require(ProtocolFeature f, FrontendRequest r) throws BackendException {
        if (!negotiated(f)) {
            throw new BackendException(BackendException.UNSUPPORTED, r.specName() + " needs protocol feature "
                    + f + ", which was not negotiated");
        }
    }

    /** SET_FEATURES. */
    void setFeatures(long value) throws BackendException {
        long offered = backend.offeredFeatures();
        if ((value & ~offered) != 0) {
            throw new BackendException(BackendException.INVALID, "features not offered, extra=0x"
                    + Long.toHexString(value & ~offered));
        }
        boolean first = !featuresSet;
        negotiatedFeatures = value;
        featuresSet = true;
        LOG.log(DEBUG, "features acknowledged: 0x{0} (offered 0x{1})", Long.toHexString(value), Long.toHexString(offered));
        // Without F_PROTOCOL_FEATURES rings are enabled from the start (vhost-user.rst, "Ring states").
        rings.featuresChanged((value & PROTOCOL_FEATURES) == 0 && first);
        device().featuresNegotiated(value);
    }

    /** SET_PROTOCOL_FEATURES. */
    void setProtocolFeatures(long value) throws BackendException {
        long offered = backend.offeredProtocolFeatures();
        if ((value & ~offered) != 0) {
            throw new BackendException(BackendException.INVALID, "protocol features not offered, extra=0x"
                    + Long.toHexString(value & ~offered));
        }
        protocolFeatures = value;
        protocolFeaturesSet = true;
        LOG.log(DEBUG, "protocol features acknowledged: {0} (0x{1}, offered 0x{2})", ProtocolFeature.describe(value),
                Long.toHexString(value), Long.toHexString(offered));
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
    void requireVringEnableAllowed() throws BackendException {
        boolean allowed = featuresSet ? (negotiatedFeatures & PROTOCOL_FEATURES) != 0 : protocolFeaturesSet;
        if (!allowed) {
            throw new BackendException(BackendException.INVALID, featuresSet
                    ? "SET_VRING_ENABLE needs F_PROTOCOL_FEATURES, which SET_FEATURES did not acknowledge"
                    : "SET_VRING_ENABLE before SET_FEATURES needs the protocol features exchanged (SET_PROTOCOL_FEATURES)");
        }
    }

    /** {@return whether rings start enabled after a reset: only when SET_FEATURES left F_PROTOCOL_FEATURES off} */
    boolean ringsEnabledWithoutEnable() {
        return featuresSet && (negotiatedFeatures & PROTOCOL_FEATURES) == 0;
    }

    int status() {
        return status;
    }

    /** SET_STATUS: stored, told to the device; 0 resets the device. */
    void setStatus(int value) {
        status = value;
        LOG.log(DEBUG, "device status 0x{0}", Integer.toHexString(value));
        device().statusChanged(value);
        if (value == 0) {
            reset();
        }
    }

    /** RESET_OWNER, RESET_DEVICE, status 0: every ring stopped and set back, the IOTLB emptied, the device reset. */
    void reset() {
        LOG.log(DEBUG, "device reset");
        rings.resetAll();
        status = 0;
        iova.clear();
        device().reset();
    }

    // ---- replies ----

    MemorySegment replyBody(long size) {
        return writer.buffer().asSlice(VhostUserMessageWriter.PAYLOAD_OFFSET, size);
    }

    void sendReply(VhostUserRequest r, int size, List<OwnedFd> fds) throws IOException {
        writer.sendReply(r, size, fds);
    }

    void replyU64(VhostUserRequest r, long value) throws IOException {
        writer.sendReplyU64(r, value);
    }

    /** A REPLY_ACK status for any request code (also one the table does not know). */
    void sendAck(long requestCode, long ackStatus) throws IOException {
        u64.wrap(writer.buffer(), VhostUserMessageWriter.PAYLOAD_OFFSET).value(ackStatus);
        writer.sendUnchecked(requestCode, VhostUserHeader.VERSION | VhostUserHeader.REPLY_FLAG, U64Payload.ENCODED_LENGTH,
                List.of());
    }

    /**
     * Runs a task on a worker and waits for it, at most the back-end's stall timeout. A worker that does not
     * answer in time ends the connection (its socket is shut down and {@link WorkerStalledException} thrown):
     * the control thread, the disconnect and the shutdown must not hang on something a peer or a blocking
     * device holds. Once stalled, teardown tasks wait {@link #TEARDOWN_WAIT}; one the worker still does not
     * take is left queued (logged) and runs once when the worker comes back.
     *
     * @param worker the worker
     * @param task the task
     * @throws WorkerStalledException when the worker did not answer in time
     */
    void onWorker(EventLoop worker, Runnable task) {
        boolean tearingDown = stalled;
        Duration timeout = tearingDown ? TEARDOWN_WAIT : backend.options().stallTimeout();
        AtomicBoolean ran = new AtomicBoolean();
        Runnable once = () -> {
            if (ran.compareAndSet(false, true)) {
                task.run();
            }
        };
        try {
            worker.awaitOnLoop(once, timeout);
        } catch (TimeoutException e) {
            if (tearingDown) {
                // Queued again: it runs (once) when the worker is free, before anything a later connection queues.
                LOG.log(WARNING, "worker still stalled during teardown, the step runs when it is free: {0}", e.getMessage());
                worker.execute(once);
                return;
            }
            stalled = true;
            LOG.log(WARNING, "a worker did not answer within {0} ms, closing the connection: {1}",
                    timeout.toMillis(), e.getMessage());
            channel.shutdown();
            throw new WorkerStalledException(timeout, e);
        } catch (IllegalStateException e) {
            // The step threw on the worker (a device callback such as queueStarted): whatever it was, an
            // Error included, the connection cannot go on from a state half changed. It ends; the worker
            // and the server go on with the next front-end.
            Throwable cause = e.getCause() == null ? e : e.getCause();
            LOG.log(ERROR, "a step on a ring worker failed with " + cause + "; closing the connection", cause);
            channel.shutdown();
            throw e;
        }
    }

    /** Sets how long a read of the control socket may wait (0: forever). */
    void setReadTimeoutMillis(int millis) throws IOException {
        channel.setReadTimeoutMillis(millis);
    }

    /** Wakes the connection thread and any worker blocked on a socket (from {@link VhostUserBackend#close}). */
    void shutdown() {
        channel.shutdown();
        backendChannel.shutdownChannel();
    }

    /** Releases everything the connection held. */
    @Override
    public void close() {
        // First wake a worker blocked sending on the back-end channel (a front-end that never reads it fills
        // the socket): stopping the rings waits for the workers.
        backendChannel.shutdownChannel();
        backendChannel.stopSender();
        rings.detachAll();
        memoryTable.close();
        iova.clear();
        dirtyLog.close();
        inflight.close();
        backendChannel.close();
        channel.close();
        deviceState.close();
        device().reset();
    }
}
