package dev.outproc.vhost.message;

import dev.outproc.core.virtio.VirtioFeature;
import static dev.outproc.vhost.message.PayloadType.CONFIG;
import static dev.outproc.vhost.message.PayloadType.CRYPTO_SESSION;
import static dev.outproc.vhost.message.PayloadType.DEVICE_STATE_TRANSFER;
import static dev.outproc.vhost.message.PayloadType.INFLIGHT;
import static dev.outproc.vhost.message.PayloadType.IOTLB;
import static dev.outproc.vhost.message.PayloadType.LOG;
import static dev.outproc.vhost.message.PayloadType.MEM_TABLE;
import static dev.outproc.vhost.message.PayloadType.NONE;
import static dev.outproc.vhost.message.PayloadType.SHARED_OBJECT;
import static dev.outproc.vhost.message.PayloadType.SHMEM_CONFIG;
import static dev.outproc.vhost.message.PayloadType.SINGLE_MEM_REGION;
import static dev.outproc.vhost.message.PayloadType.U64;
import static dev.outproc.vhost.message.PayloadType.VRING_ADDR;
import static dev.outproc.vhost.message.PayloadType.VRING_STATE;

/**
 * The front-end's requests (vhost-user.rst, "Front-end message types"), numbered 1–44, named as the
 * specification names them without the {@code VHOST_USER_} prefix.
 *
 * <p>Metadata columns: request payload, fds the request carries (min–max), reply payload (U64 = the
 * REPLY_ACK status for requests without explicit reply), fds of the reply, whether the back-end always
 * replies, whether a REPLY_ACK may stand in for the explicit reply, and the gating features.
 * Variable fd counts are narrowed by {@link MessageValidator}: SET_MEM_TABLE carries exactly one fd per
 * region, SET_VRING_KICK/CALL/ERR carry one fd unless bit 8 of the payload says "no fd".
 */
public enum FrontendRequest implements VhostUserRequest {
    /** Reads the device's virtio features (reply u64). */
    GET_FEATURES(1, NONE, 0, 0, U64, 0, 0, true, false, null, 0),
    /** Acknowledges the features the driver accepted (u64). */
    SET_FEATURES(2, U64, 0, 0, U64, 0, 0, false, false, null, 0),
    /** Marks the sender as the owner of the session. */
    SET_OWNER(3, NONE, 0, 0, U64, 0, 0, false, false, null, 0),
    /** Deprecated: stop all rings (back-ends should ignore it or disable rings). */
    RESET_OWNER(4, NONE, 0, 0, U64, 0, 0, false, false, null, 0),
    /** Sets the memory table: up to 8 regions, one fd per region; postcopy replies with the table. */
    SET_MEM_TABLE(5, MEM_TABLE, 0, MemTable.MAX_REGIONS, MEM_TABLE, 0, 0, false, true, null, 0),
    /**
     * Sets the dirty log: a log description (16 bytes, although the specification's table says u64) and
     * the log's fd; the back-end replies u64 (vhost-user.rst, "Communication"). This is the LOG_SHMFD
     * form, the only one outproc supports: QEMU sends the description without an fd when LOG_SHMFD is
     * off, which this table rejects as a missing fd.
     */
    SET_LOG_BASE(6, LOG, 1, 1, U64, 0, 0, true, false, ProtocolFeature.LOG_SHMFD, 0),
    /** Sets an eventfd that tells the front-end the log changed. */
    SET_LOG_FD(7, NONE, 1, 1, U64, 0, 0, false, false, null, 0),
    /** Sets a ring's size (vring state). */
    SET_VRING_NUM(8, VRING_STATE, 0, 0, U64, 0, 0, false, false, null, 0),
    /** Sets a ring's addresses. */
    SET_VRING_ADDR(9, VRING_ADDR, 0, 0, U64, 0, 0, false, false, null, 0),
    /** Sets the next descriptor index or indices of a ring. */
    SET_VRING_BASE(10, VRING_STATE, 0, 0, U64, 0, 0, false, false, null, 0),
    /** Stops a ring and returns its descriptor index or indices. */
    GET_VRING_BASE(11, VRING_STATE, 0, 0, VRING_STATE, 0, 0, true, false, null, 0),
    /** Sets the kick eventfd of a ring (u64: index, bit 8 no fd). */
    SET_VRING_KICK(12, U64, 0, 1, U64, 0, 0, false, false, null, 0),
    /** Sets the call eventfd of a ring (u64: index, bit 8 no fd). */
    SET_VRING_CALL(13, U64, 0, 1, U64, 0, 0, false, false, null, 0),
    /** Sets the error eventfd of a ring (u64: index, bit 8 no fd). */
    SET_VRING_ERR(14, U64, 0, 1, U64, 0, 0, false, false, null, 0),
    /** Reads the protocol features (reply u64). */
    GET_PROTOCOL_FEATURES(15, NONE, 0, 0, U64, 0, 0, true, false, null, VhostUserFeature.PROTOCOL_FEATURES.mask()),
    /** Acknowledges protocol features (u64). */
    SET_PROTOCOL_FEATURES(16, U64, 0, 0, U64, 0, 0, false, false, null, VhostUserFeature.PROTOCOL_FEATURES.mask()),
    /** Reads the number of queues (reply u64). */
    GET_QUEUE_NUM(17, NONE, 0, 0, U64, 0, 0, true, false, ProtocolFeature.MQ, 0),
    /** Enables or disables a ring (vring state, num 0 or 1). */
    SET_VRING_ENABLE(18, VRING_STATE, 0, 0, U64, 0, 0, false, false, null, VhostUserFeature.PROTOCOL_FEATURES.mask()),
    /** Broadcasts a fake RARP (u64 whose first 6 bytes are the MAC). */
    SEND_RARP(19, U64, 0, 0, U64, 0, 0, false, false, ProtocolFeature.RARP, 0),
    /** Sets the host MTU (u64). */
    NET_SET_MTU(20, U64, 0, 0, U64, 0, 0, false, false, ProtocolFeature.MTU, 0),
    /** Hands over the back-end channel socket (one fd); formerly SET_SLAVE_REQ_FD. */
    SET_BACKEND_REQ_FD(21, NONE, 1, 1, U64, 0, 0, false, false, ProtocolFeature.BACKEND_REQ, 0),
    /** Updates or invalidates an IOTLB entry; the back-end always answers u64. */
    IOTLB_MSG(22, IOTLB, 0, 0, U64, 0, 0, true, false, null, VirtioFeature.ACCESS_PLATFORM.mask()),
    /** Sets the endianness of a legacy ring (vring state, num 0 little or 1 big). */
    SET_VRING_ENDIAN(23, VRING_STATE, 0, 0, U64, 0, 0, false, false, ProtocolFeature.CROSS_ENDIAN, 0),
    /** Reads config space; the reply has the same size, or is empty on error. */
    GET_CONFIG(24, CONFIG, 0, 0, CONFIG, 0, 0, true, false, ProtocolFeature.CONFIG, 0),
    /** Writes config space. */
    SET_CONFIG(25, CONFIG, 0, 0, U64, 0, 0, false, false, ProtocolFeature.CONFIG, 0),
    /** Creates a crypto session; the reply carries the session id. */
    CREATE_CRYPTO_SESSION(26, CRYPTO_SESSION, 0, 0, CRYPTO_SESSION, 0, 0, true, false, ProtocolFeature.CRYPTO_SESSION, 0),
    /** Closes a crypto session (u64 id). */
    CLOSE_CRYPTO_SESSION(27, U64, 0, 0, U64, 0, 0, false, false, ProtocolFeature.CRYPTO_SESSION, 0),
    /** Postcopy is coming: the reply is empty and carries a userfaultfd. */
    POSTCOPY_ADVISE(28, NONE, 0, 0, NONE, 1, 1, true, false, ProtocolFeature.PAGEFAULT, 0),
    /** Postcopy has started. */
    POSTCOPY_LISTEN(29, NONE, 0, 0, U64, 0, 0, false, false, ProtocolFeature.PAGEFAULT, 0),
    /** Postcopy has ended; reply u64 status. */
    POSTCOPY_END(30, NONE, 0, 0, U64, 0, 0, true, false, ProtocolFeature.PAGEFAULT, 0),
    /** Asks for the inflight buffer; the reply describes it and carries its fd. */
    GET_INFLIGHT_FD(31, INFLIGHT, 0, 0, INFLIGHT, 1, 1, true, false, ProtocolFeature.INFLIGHT_SHMFD, 0),
    /** Hands the inflight buffer back (one fd). */
    SET_INFLIGHT_FD(32, INFLIGHT, 1, 1, U64, 0, 0, false, false, ProtocolFeature.INFLIGHT_SHMFD, 0),
    /** Sets the GPU protocol socket (one fd; the spec's fd list forgets it). */
    GPU_SET_SOCKET(33, NONE, 1, 1, U64, 0, 0, false, false, null, 0),
    /** Resets the device to its initial state. */
    RESET_DEVICE(34, NONE, 0, 0, U64, 0, 0, false, false, ProtocolFeature.RESET_DEVICE, 0),
    /** In-band kick (vring state, num reserved 0). */
    VRING_KICK(35, VRING_STATE, 0, 0, U64, 0, 0, false, false, ProtocolFeature.INBAND_NOTIFICATIONS, 0),
    /** Reads the maximum number of memory slots (reply u64). */
    GET_MAX_MEM_SLOTS(36, NONE, 0, 0, U64, 0, 0, true, false, ProtocolFeature.CONFIGURE_MEM_SLOTS, 0),
    /** Adds one memory region (exactly one fd); postcopy replies with the region. */
    ADD_MEM_REG(37, SINGLE_MEM_REGION, 1, 1, SINGLE_MEM_REGION, 0, 0, false, true, ProtocolFeature.CONFIGURE_MEM_SLOTS, 0),
    /** Removes one memory region; an fd SHOULD NOT come, but one MAY, and it is closed unused. */
    REM_MEM_REG(38, SINGLE_MEM_REGION, 0, 1, U64, 0, 0, false, false, ProtocolFeature.CONFIGURE_MEM_SLOTS, 0),
    /** Sets the virtio device status (u64 holding one status byte). */
    SET_STATUS(39, U64, 0, 0, U64, 0, 0, false, false, ProtocolFeature.STATUS, 0),
    /** Reads the virtio device status (reply u64). */
    GET_STATUS(40, NONE, 0, 0, U64, 0, 0, true, false, ProtocolFeature.STATUS, 0),
    /** Looks up a shared object by UUID; the reply (u64) carries the dma-buf fd on success. */
    GET_SHARED_OBJECT(41, SHARED_OBJECT, 0, 0, U64, 0, 1, true, false, ProtocolFeature.SHARED_OBJECT, 0),
    /** Opens a device-state transfer (one fd); the reply u64 may carry the back-end's own fd. */
    SET_DEVICE_STATE_FD(42, DEVICE_STATE_TRANSFER, 1, 1, U64, 0, 1, true, false, ProtocolFeature.DEVICE_STATE, 0),
    /** Asks whether the device-state transfer succeeded (reply u64, 0 = success). */
    CHECK_DEVICE_STATE(43, NONE, 0, 0, U64, 0, 0, true, false, ProtocolFeature.DEVICE_STATE, 0),
    /** Reads the VIRTIO shared memory region sizes. */
    GET_SHMEM_CONFIG(44, NONE, 0, 0, SHMEM_CONFIG, 0, 0, true, false, ProtocolFeature.SHMEM, 0);

    /** The highest request number the specification defines. */
    public static final int MAX_CODE = 44;
    private static final FrontendRequest[] BY_CODE = new FrontendRequest[MAX_CODE + 1];

    static {
        for (FrontendRequest r : values()) {
            if (BY_CODE[r.code] != null) {
                throw new ExceptionInInitializerError("duplicate request code " + r.code);
            }
            BY_CODE[r.code] = r;
        }
    }

    private final int code;
    private final RequestRules rules;

    FrontendRequest(int code, PayloadType requestPayload, int minRequestFds, int maxRequestFds, PayloadType replyPayload,
                    int minReplyFds, int maxReplyFds, boolean alwaysReplies, boolean ackReplyAllowed,
                    ProtocolFeature protocolGate, long featureGateMask) {
        this.code = code;
        this.rules = new RequestRules(requestPayload, minRequestFds, maxRequestFds, replyPayload, minReplyFds,
                maxReplyFds, alwaysReplies, ackReplyAllowed, protocolGate, featureGateMask);
    }

    /**
     * {@return the request with that number, or {@code null} when the specification defines none}
     *
     * @param code a request number as read from the wire (any value)
     */
    public static FrontendRequest ofCode(long code) {
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
        return "VHOST_USER_" + name();
    }

    @Override
    public boolean sentByBackend() {
        return false;
    }
}
