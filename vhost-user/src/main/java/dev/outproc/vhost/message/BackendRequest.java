package dev.outproc.vhost.message;

import dev.outproc.core.virtio.VirtioFeature;
import static dev.outproc.vhost.message.PayloadType.IOTLB;
import static dev.outproc.vhost.message.PayloadType.NONE;
import static dev.outproc.vhost.message.PayloadType.SHARED_OBJECT;
import static dev.outproc.vhost.message.PayloadType.U64;
import static dev.outproc.vhost.message.PayloadType.VRING_AREA;
import static dev.outproc.vhost.message.PayloadType.VRING_STATE;

/**
 * The back-end's requests on the back-end channel (vhost-user.rst, "Back-end message types"), numbered
 * 1–10, named without the {@code VHOST_USER_BACKEND_} prefix (formerly {@code VHOST_USER_SLAVE_}).
 * The front-end answers; without an explicit reply it answers only when NEED_REPLY is set, with a u64
 * status. Fds on this channel require {@link ProtocolFeature#BACKEND_SEND_FD} (at most 8 per message,
 * "Back-end communication"); that gate is semantic and left to the receiver.
 */
public enum BackendRequest implements VhostUserRequest {
    /** IOTLB miss or access failure. */
    IOTLB_MSG(1, IOTLB, 0, 0, U64, 0, 0, false, null, VirtioFeature.ACCESS_PLATFORM.mask()),
    /** The config space changed. */
    CONFIG_CHANGE_MSG(2, NONE, 0, 0, U64, 0, 0, false, ProtocolFeature.CONFIG, 0),
    /** Sets or clears a queue's host notifier (vring area; an fd unless bit 8 of its u64 says none). */
    VRING_HOST_NOTIFIER_MSG(3, VRING_AREA, 0, 1, U64, 0, 0, false, ProtocolFeature.HOST_NOTIFIER, 0),
    /** In-band call (vring state, num reserved 0). */
    VRING_CALL(4, VRING_STATE, 0, 0, U64, 0, 0, false, ProtocolFeature.INBAND_NOTIFICATIONS, 0),
    /** In-band error (vring state, num reserved 0). */
    VRING_ERR(5, VRING_STATE, 0, 0, U64, 0, 0, false, ProtocolFeature.INBAND_NOTIFICATIONS, 0),
    /** Adds the back-end as exporter of a UUID. */
    SHARED_OBJECT_ADD(6, SHARED_OBJECT, 0, 0, U64, 0, 0, false, ProtocolFeature.SHARED_OBJECT, 0),
    /** Removes the back-end as exporter of a UUID. */
    SHARED_OBJECT_REMOVE(7, SHARED_OBJECT, 0, 0, U64, 0, 0, false, ProtocolFeature.SHARED_OBJECT, 0),
    /** Looks up a UUID; the reply u64 carries the dma-buf fd on success. */
    SHARED_OBJECT_LOOKUP(8, SHARED_OBJECT, 0, 0, U64, 0, 1, true, ProtocolFeature.SHARED_OBJECT, 0),
    /** Maps an fd into a VIRTIO shared memory region (exactly one fd). */
    SHMEM_MAP(9, PayloadType.SHMEM_MAP, 1, 1, U64, 0, 0, false, ProtocolFeature.SHMEM, 0),
    /**
     * Unmaps a range of a VIRTIO shared memory region. The specification says "a reply is generated";
     * QEMU answers only with NEED_REPLY, so this table does not mark it as always replying.
     */
    SHMEM_UNMAP(10, PayloadType.SHMEM_MAP, 0, 0, U64, 0, 0, false, ProtocolFeature.SHMEM, 0);

    /** The highest request number the specification defines. */
    public static final int MAX_CODE = 10;
    /** The most fds a back-end message may carry ("at most 8 descriptors in each message"). */
    public static final int MAX_FDS = 8;
    private static final BackendRequest[] BY_CODE = new BackendRequest[MAX_CODE + 1];

    static {
        for (BackendRequest r : values()) {
            if (BY_CODE[r.code] != null) {
                throw new ExceptionInInitializerError("duplicate request code " + r.code);
            }
            BY_CODE[r.code] = r;
        }
    }

    private final int code;
    private final RequestRules rules;

    BackendRequest(int code, PayloadType requestPayload, int minRequestFds, int maxRequestFds, PayloadType replyPayload,
                   int minReplyFds, int maxReplyFds, boolean alwaysReplies, ProtocolFeature protocolGate,
                   long featureGateMask) {
        this.code = code;
        this.rules = new RequestRules(requestPayload, minRequestFds, maxRequestFds, replyPayload, minReplyFds,
                maxReplyFds, alwaysReplies, false, protocolGate, featureGateMask);
    }

    /**
     * {@return the request with that number, or {@code null} when the specification defines none}
     *
     * @param code a request number as read from the wire (any value)
     */
    public static BackendRequest ofCode(long code) {
        return code > 0 && code <= MAX_CODE ? BY_CODE[(int) code] : null;
    }

    @Override
    public RequestRules rules() {
        return rules;
    }

    @Override
    public int code() {
        return code;
    }

    @Override
    public String specName() {
        return "VHOST_USER_BACKEND_" + name();
    }

    @Override
    public boolean sentByBackend() {
        return true;
    }
}
