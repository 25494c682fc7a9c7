package dev.outproc.vhost.backend;

import dev.outproc.core.fd.NativeException;
import dev.outproc.core.memory.GuestMemoryException;
import dev.outproc.core.transport.PeerClosedException;
import dev.outproc.core.transport.ReceivedFds;
import dev.outproc.core.virtqueue.VirtqueueException;
import dev.outproc.vhost.connection.VhostUserMessage;
import dev.outproc.vhost.message.ConfigSpace;
import dev.outproc.vhost.message.DeviceStateTransfer;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.InflightDescription;
import dev.outproc.vhost.message.IotlbMsg;
import dev.outproc.vhost.message.LogDescription;
import dev.outproc.vhost.message.MemTable;
import dev.outproc.vhost.message.PayloadType;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.vhost.message.SingleMemRegion;
import dev.outproc.vhost.message.U64Payload;
import dev.outproc.vhost.message.VhostUserHeader;
import dev.outproc.vhost.message.VhostUserProtocolException;
import dev.outproc.vhost.message.VringAddr;
import dev.outproc.vhost.message.VringState;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

import static java.lang.System.Logger.Level.TRACE;
import static java.lang.System.Logger.Level.WARNING;

/**
 * The read loop of one connection: reads each message (syntax checked by the reader), decodes its payload
 * with the {@code dev.outproc.vhost.message} flyweights, hands it to its handler, and applies the reply
 * policy: REPLY_ACK when asked, the request's own u64 status where it has one, else the connection closes
 * on a refusal. The decoders are allocated once per connection and rewrapped for every message.
 */
final class Dispatcher {
    private static final System.Logger LOG = System.getLogger(VhostUserBackend.class.getName());

    private final Session session;
    private final U64Payload.Decoder u64 = new U64Payload.Decoder();
    private final VringState.Decoder vringState = new VringState.Decoder();
    private final VringAddr.Decoder vringAddr = new VringAddr.Decoder();
    private final MemTable.Decoder memTable = new MemTable.Decoder();
    private final SingleMemRegion.Decoder memRegion = new SingleMemRegion.Decoder();
    private final LogDescription.Decoder logDescription = new LogDescription.Decoder();
    private final IotlbMsg.Decoder iotlbMsg = new IotlbMsg.Decoder();
    private final ConfigSpace.Decoder configSpace = new ConfigSpace.Decoder();
    private final InflightDescription.Decoder inflightDescription = new InflightDescription.Decoder();
    private final DeviceStateTransfer.Decoder deviceStateTransfer = new DeviceStateTransfer.Decoder();

    Dispatcher(Session session) {
        this.session = session;
    }

    /** Serves until the front-end leaves (returns) or breaks the protocol (throws). */
    void run() throws IOException {
        while (!session.backend().isClosed()) {
            if (!handleOne()) {
                return;
            }
        }
    }

    /** Reads and handles one message; returns false at a clean end of stream. */
    private boolean handleOne() throws IOException {
        VhostUserMessage message;
        try {
            message = session.reader().read();
        } catch (PeerClosedException e) {
            if (e.bytesRead() == 0) {
                return false;
            }
            throw e;
        } catch (VhostUserProtocolException e) {
            // Syntax broken. In step (payload consumed): answer when asked, else close.
            boolean needReply = (e.flags() & VhostUserHeader.NEED_REPLY_FLAG) != 0 && e.flags() >= 0;
            if (!e.connectionMustClose() && needReply && replyAckNegotiated()) {
                LOG.log(WARNING, "refused request {0}: {1}", e.request(), e.getMessage());
                session.sendAck(e.request(), BackendException.INVALID);
                return true;
            }
            throw e;
        }
        try (message) {
            FrontendRequest request = (FrontendRequest) message.request();
            boolean needReply = message.needReply();
            if (LOG.isLoggable(TRACE)) { // the arguments would be boxed on every message otherwise
                LOG.log(TRACE, "{0} ({1} bytes, {2} fds{3})", request.specName(), message.size(), message.fdCount(),
                        needReply ? ", NEED_REPLY" : "");
            }
            try {
                boolean replied = dispatch(request, message.payload(), message.fds());
                if (needReply && !replied && replyAckNegotiated() && !request.alwaysReplies()) {
                    session.sendAck(request.code(), 0);
                }
            } catch (BackendException | GuestMemoryException | VirtqueueException | NativeException e) {
                refuse(request, needReply, e);
            }
            return true;
        }
    }

    private void refuse(FrontendRequest request, boolean needReply, IOException e) throws IOException {
        long code = e instanceof BackendException b ? b.status() : BackendException.INVALID;
        if (needReply && replyAckNegotiated() && !request.alwaysReplies()) {
            LOG.log(WARNING, "refused {0}: {1}", request.specName(), e.getMessage());
            session.sendAck(request.code(), code);
        } else if (repliesWithStatus(request)) {
            // These answer with a u64 status of their own (vhost-user.rst): the refusal goes there.
            // SET_DEVICE_STATE_FD: bits 0-7 the error, bit 8 "no fd returned".
            LOG.log(WARNING, "refused {0}: {1}", request.specName(), e.getMessage());
            session.replyU64(request, request == FrontendRequest.SET_DEVICE_STATE_FD ? (code & 0xff) | 1L << 8 : code);
        } else {
            throw new BackendException(code, request.specName() + " refused and the protocol has no error reply "
                    + "for it here, closing the connection: " + e.getMessage(), e);
        }
    }

    private static boolean repliesWithStatus(FrontendRequest r) {
        return r == FrontendRequest.SET_LOG_BASE || r == FrontendRequest.SET_DEVICE_STATE_FD
                || r == FrontendRequest.CHECK_DEVICE_STATE || r == FrontendRequest.IOTLB_MSG;
    }

    private boolean replyAckNegotiated() {
        return session.negotiated(ProtocolFeature.REPLY_ACK);
    }

    /** Handles a syntax-checked request; returns whether it sent its own reply. */
    private boolean dispatch(FrontendRequest r, MemorySegment p, ReceivedFds fds) throws IOException {
        switch (r) {
            case GET_FEATURES -> {
                session.replyU64(r, session.backend().offeredFeatures());
                return true;
            }
            case SET_FEATURES -> session.setFeatures(u64.wrap(p, 0).value());
            case SET_OWNER -> {
                // Nothing to record: one connection is one owner.
            }
            case RESET_OWNER -> session.reset();
            case GET_PROTOCOL_FEATURES -> {
                session.replyU64(r, session.backend().offeredProtocolFeatures());
                return true;
            }
            case SET_PROTOCOL_FEATURES -> session.setProtocolFeatures(u64.wrap(p, 0).value());
            case GET_QUEUE_NUM -> {
                session.replyU64(r, session.vrings().length);
                return true;
            }
            case GET_MAX_MEM_SLOTS -> {
                session.require(ProtocolFeature.CONFIGURE_MEM_SLOTS, r);
                session.replyU64(r, VhostUserBackend.MAX_MEM_SLOTS);
                return true;
            }
            case SET_MEM_TABLE -> session.memoryTable().setMemTable(memTable.wrap(p, 0), fds);
            case ADD_MEM_REG -> session.memoryTable().addRegion(memRegion.wrap(p, 0).region(), fds);
            case REM_MEM_REG -> session.memoryTable().removeRegion(memRegion.wrap(p, 0).region());
            case SET_LOG_BASE -> {
                session.dirtyLog().setLogBase(logDescription.wrap(p, 0), fds);
                return true;
            }
            case SET_LOG_FD -> session.dirtyLog().setLogFd(fds.take(0));
            case SET_VRING_NUM -> session.rings().setNum(vringState.wrap(p, 0));
            case SET_VRING_ADDR -> session.rings().setAddr(vringAddr.wrap(p, 0));
            case SET_VRING_BASE -> session.rings().setBase(vringState.wrap(p, 0));
            case GET_VRING_BASE -> {
                session.rings().getBase(vringState.wrap(p, 0));
                return true;
            }
            case SET_VRING_KICK -> session.rings().setKick(u64.wrap(p, 0).value(), fds);
            case SET_VRING_CALL -> session.rings().setCall(u64.wrap(p, 0).value(), fds, false);
            case SET_VRING_ERR -> session.rings().setCall(u64.wrap(p, 0).value(), fds, true);
            case SET_VRING_ENABLE -> session.rings().setEnable(vringState.wrap(p, 0));
            case VRING_KICK -> {
                session.require(ProtocolFeature.INBAND_NOTIFICATIONS, r);
                session.rings().kickInband(vringState.wrap(p, 0));
            }
            case SET_BACKEND_REQ_FD -> {
                session.require(ProtocolFeature.BACKEND_REQ, r);
                session.backendChannel().open(fds.take(0));
            }
            case GET_CONFIG -> {
                session.config().get(configSpace.wrap(p, 0));
                return true;
            }
            case SET_CONFIG -> session.config().set(configSpace.wrap(p, 0));
            case SET_VRING_ENDIAN -> {
                session.require(ProtocolFeature.CROSS_ENDIAN, r);
                throw new BackendException(BackendException.UNSUPPORTED, "only little-endian (VIRTIO 1.x) rings are supported");
            }
            case NET_SET_MTU -> session.config().setMtu(u64.wrap(p, 0).value());
            case SEND_RARP -> session.config().sendRarp(p);
            case RESET_DEVICE -> {
                session.require(ProtocolFeature.RESET_DEVICE, r);
                session.reset();
            }
            case SET_STATUS -> {
                session.require(ProtocolFeature.STATUS, r);
                session.setStatus((int) u64.wrap(p, 0).value());
            }
            case GET_STATUS -> {
                session.require(ProtocolFeature.STATUS, r);
                session.replyU64(r, session.status());
                return true;
            }
            case GET_INFLIGHT_FD -> {
                session.inflight().getInflightFd(inflightDescription.wrap(p, 0));
                return true;
            }
            case SET_INFLIGHT_FD -> session.inflight().setInflightFd(inflightDescription.wrap(p, 0), fds);
            case SET_DEVICE_STATE_FD -> {
                session.deviceState().setFd(deviceStateTransfer.wrap(p, 0), fds);
                return true;
            }
            case CHECK_DEVICE_STATE -> {
                session.deviceState().check();
                return true;
            }
            case IOTLB_MSG -> {
                session.iova().message(iotlbMsg.wrap(p, 0));
                session.replyU64(r, 0);
                return true;
            }
            case CREATE_CRYPTO_SESSION, POSTCOPY_ADVISE, POSTCOPY_END, GET_SHARED_OBJECT, GET_SHMEM_CONFIG -> {
                // Requests that always reply, for features this back-end never offers: the reply is an
                // error status where the reply is a u64, else the connection closes.
                if (r.replyPayload() == PayloadType.U64 && r.maxReplyFds() == 0) {
                    LOG.log(WARNING, "{0} is not supported; replying with an error", r.specName());
                    session.replyU64(r, BackendException.UNSUPPORTED);
                    return true;
                }
                throw new BackendException(BackendException.UNSUPPORTED, r.specName() + " is not supported (its feature is never offered)");
            }
            default -> throw new BackendException(BackendException.UNSUPPORTED, r.specName()
                    + " is not supported (its feature is never offered)");
        }
        return false;
    }
}
