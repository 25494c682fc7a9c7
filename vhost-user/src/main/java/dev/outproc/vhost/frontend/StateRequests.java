package dev.outproc.vhost.frontend;

import dev.outproc.core.fd.OwnedFd;
import dev.outproc.vhost.connection.VhostUserMessage;
import dev.outproc.vhost.message.DeviceStateTransfer;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.InflightDescription;

import java.io.IOException;
import java.util.List;

/**
 * The front-end's requests about state the back-end keeps beyond the rings: the inflight log
 * (GET_INFLIGHT_FD, SET_INFLIGHT_FD; INFLIGHT_SHMFD), which survives a back-end crash, and the device-state
 * transfer (SET_DEVICE_STATE_FD; DEVICE_STATE), which carries a device's state across a migration.
 */
final class StateRequests {
    /** The reply's status: the low 8 bits; bit 8 says the back-end sent no fd of its own. */
    private static final long STATUS_MASK = 0xff;

    private final RequestChannel io;
    private final InflightDescription.Encoder inflightRequest = new InflightDescription.Encoder();
    private final InflightDescription.Decoder inflightReply = new InflightDescription.Decoder();
    private final DeviceStateTransfer.Encoder deviceState = new DeviceStateTransfer.Encoder();

    StateRequests(RequestChannel io) {
        this.io = io;
    }

    VhostUserFrontend.Inflight getInflightFd(int numQueues, int queueSize) throws IOException {
        inflightRequest.wrap(io.body(InflightDescription.ENCODED_LENGTH), 0).clear().numQueues(numQueues)
                .queueSize(queueSize);
        try (VhostUserMessage m = io.call(FrontendRequest.GET_INFLIGHT_FD, InflightDescription.ENCODED_LENGTH, List.of())) {
            if (m.fdCount() != 1) {
                throw new FrontendException(0, "GET_INFLIGHT_FD reply carried " + m.fdCount() + " fds, not 1");
            }
            InflightDescription.Decoder reply = inflightReply.wrap(m.payload(), 0);
            return new VhostUserFrontend.Inflight(m.takeFd(0), reply.mmapSize(), reply.mmapOffset(), reply.numQueues(),
                    reply.queueSize());
        }
    }

    void setInflightFd(VhostUserFrontend.Inflight inflight) throws IOException {
        inflightRequest.wrap(io.body(InflightDescription.ENCODED_LENGTH), 0).clear().mmapSize(inflight.mmapSize())
                .mmapOffset(inflight.mmapOffset()).numQueues(inflight.numQueues()).queueSize(inflight.queueSize());
        io.send(FrontendRequest.SET_INFLIGHT_FD, InflightDescription.ENCODED_LENGTH, List.of(inflight.fd()));
    }

    void setDeviceStateFd(boolean save, OwnedFd fd) throws IOException {
        deviceState.wrap(io.body(DeviceStateTransfer.ENCODED_LENGTH), 0).clear()
                .direction(save ? DeviceStateTransfer.DIRECTION_SAVE : DeviceStateTransfer.DIRECTION_LOAD)
                .phase(DeviceStateTransfer.PHASE_STOPPED);
        try (VhostUserMessage m = io.call(FrontendRequest.SET_DEVICE_STATE_FD, DeviceStateTransfer.ENCODED_LENGTH,
                List.of(fd))) {
            long status = m.payloadU64() & STATUS_MASK;
            if (status != 0) {
                throw new FrontendException(status, "SET_DEVICE_STATE_FD refused, status=" + status);
            }
        }
    }
}
