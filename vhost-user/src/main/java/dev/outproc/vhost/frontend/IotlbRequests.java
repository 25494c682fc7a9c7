package dev.outproc.vhost.frontend;

import dev.outproc.vhost.connection.VhostUserMessage;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.IotlbMsg;

import java.io.IOException;
import java.util.List;

/**
 * The front-end's IOTLB_MSG requests (VIRTIO_F_ACCESS_PLATFORM with IOMMU_SUPPORT): updates and
 * invalidations of the back-end's I/O virtual address translations. IOTLB_MSG always replies; a non-zero
 * status becomes a {@link FrontendException}.
 */
final class IotlbRequests {
    private final RequestChannel io;
    private final IotlbMsg.Encoder iotlbMsg = new IotlbMsg.Encoder();

    IotlbRequests(RequestChannel io) {
        this.io = io;
    }

    void update(long iova, long size, long userAddr, int access) throws IOException {
        send(iova, size, userAddr, access, IotlbMsg.TYPE_UPDATE);
    }

    void invalidate(long iova, long size) throws IOException {
        send(iova, size, 0, IotlbMsg.PERM_NONE, IotlbMsg.TYPE_INVALIDATE);
    }

    private void send(long iova, long size, long userAddr, int access, int type) throws IOException {
        iotlbMsg.wrap(io.body(IotlbMsg.ENCODED_LENGTH), 0).clear().iova(iova).size(size).userAddr(userAddr)
                .perm(access).type(type);
        try (VhostUserMessage m = io.call(FrontendRequest.IOTLB_MSG, IotlbMsg.ENCODED_LENGTH, List.of())) {
            long status = m.payloadU64();
            if (status != 0) {
                throw new FrontendException(status, "IOTLB_MSG " + (type == IotlbMsg.TYPE_UPDATE ? "update" : "invalidate")
                        + " refused, status=" + status);
            }
        }
    }
}
