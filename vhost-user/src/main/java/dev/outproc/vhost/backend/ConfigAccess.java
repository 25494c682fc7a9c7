package dev.outproc.vhost.backend;

import dev.outproc.vhost.message.ConfigSpace;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.vhost.message.U64Payload;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.List;

import static java.lang.System.Logger.Level.DEBUG;
import static java.lang.System.Logger.Level.WARNING;

/**
 * The configuration handler: GET_CONFIG and SET_CONFIG on the device's configuration space (CONFIG),
 * and the net requests NET_SET_MTU (MTU) and SEND_RARP (RARP) handed to the device. A device's refusal
 * becomes an error status, not a lost connection.
 */
final class ConfigAccess {
    private static final System.Logger LOG = System.getLogger(VhostUserBackend.class.getName());

    private final Session session;
    private final ConfigSpace.Encoder reply = new ConfigSpace.Encoder();
    private final U64Payload.Decoder mac = new U64Payload.Decoder();

    ConfigAccess(Session session) {
        this.session = session;
    }

    /** GET_CONFIG; replies itself (an empty payload when the read cannot be served, as vhost-user.rst says). */
    void get(ConfigSpace.Decoder payload) throws IOException {
        long offset = payload.configOffset();
        long size = payload.configSize();
        long flags = payload.flags();
        int configSize = session.device().configSize();
        MemorySegment body = session.replyBody(ConfigSpace.PAYLOAD_OFFSET + size);
        reply.wrap(body, 0);
        if (!session.negotiated(ProtocolFeature.CONFIG) || configSize == 0 || offset + size > configSize) {
            LOG.log(WARNING, "GET_CONFIG refused: offset={0} size={1} configSize={2}", offset, size, configSize);
            reply.access(offset, 0, flags);
            session.sendReply(FrontendRequest.GET_CONFIG, ConfigSpace.PAYLOAD_OFFSET, List.of());
            return;
        }
        reply.access(offset, (int) size, flags);
        session.device().readConfig((int) offset, body.asSlice(ConfigSpace.PAYLOAD_OFFSET, size));
        session.sendReply(FrontendRequest.GET_CONFIG, (int) (ConfigSpace.PAYLOAD_OFFSET + size), List.of());
    }

    /** SET_CONFIG. */
    void set(ConfigSpace.Decoder payload) throws IOException {
        FrontendRequest r = FrontendRequest.SET_CONFIG;
        session.require(ProtocolFeature.CONFIG, r);
        long offset = payload.configOffset();
        long size = payload.configSize();
        int configSize = session.device().configSize();
        if (offset + size > configSize) {
            throw new BackendException(BackendException.INVALID, "SET_CONFIG outside the configuration space, offset="
                    + offset + ", size=" + size + ", configSize=" + configSize);
        }
        MemorySegment bytes = payload.config();
        deviceCall(r, () -> session.device().writeConfig((int) offset, bytes));
    }

    /** NET_SET_MTU. */
    void setMtu(long mtu) throws IOException {
        FrontendRequest r = FrontendRequest.NET_SET_MTU;
        session.require(ProtocolFeature.MTU, r);
        LOG.log(DEBUG, "MTU {0}", mtu);
        deviceCall(r, () -> session.device().setMtu((int) mtu));
    }

    /** SEND_RARP: the guest's MAC in the first six bytes of the u64 payload. */
    void sendRarp(MemorySegment payload) throws IOException {
        FrontendRequest r = FrontendRequest.SEND_RARP;
        session.require(ProtocolFeature.RARP, r);
        byte[] address = new byte[U64Payload.MAC_BYTES];
        mac.wrap(payload, 0).copyBytes(address, address.length);
        deviceCall(r, () -> session.device().sendRarp(address));
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
}
