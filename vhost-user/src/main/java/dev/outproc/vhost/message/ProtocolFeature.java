package dev.outproc.vhost.message;

/**
 * The vhost-user protocol feature bits ({@code VHOST_USER_PROTOCOL_F_*}, vhost-user.rst, "Protocol
 * features"), negotiated with GET/SET_PROTOCOL_FEATURES once {@link VhostUserFeature#PROTOCOL_FEATURES}
 * is on. The enum's ordinal is not the bit; use {@link #bit()}.
 */
public enum ProtocolFeature {
    /** Bit 0: the back-end reports its queue count (GET_QUEUE_NUM). */
    MQ(0),
    /** Bit 1: the dirty log is shared memory passed with SET_LOG_BASE. */
    LOG_SHMFD(1),
    /** Bit 2: SEND_RARP. */
    RARP(2),
    /** Bit 3: NEED_REPLY on any request gets a u64 status reply. */
    REPLY_ACK(3),
    /** Bit 4: NET_SET_MTU (spec text: {@code NET_MTU}). */
    MTU(4),
    /** Bit 5: the back-end channel (SET_BACKEND_REQ_FD), formerly SLAVE_REQ. */
    BACKEND_REQ(5),
    /** Bit 6: SET_VRING_ENDIAN for legacy devices. */
    CROSS_ENDIAN(6),
    /** Bit 7: CREATE/CLOSE_CRYPTO_SESSION. */
    CRYPTO_SESSION(7),
    /** Bit 8: postcopy migration with userfaultfd. */
    PAGEFAULT(8),
    /** Bit 9: GET/SET_CONFIG and CONFIG_CHANGE_MSG. */
    CONFIG(9),
    /** Bit 10: the back-end may send fds on its channel, formerly SLAVE_SEND_FD. */
    BACKEND_SEND_FD(10),
    /** Bit 11: VRING_HOST_NOTIFIER_MSG. */
    HOST_NOTIFIER(11),
    /** Bit 12: GET/SET_INFLIGHT_FD. */
    INFLIGHT_SHMFD(12),
    /** Bit 13: RESET_DEVICE. */
    RESET_DEVICE(13),
    /** Bit 14: VRING_KICK and back-end VRING_CALL/VRING_ERR as messages. */
    INBAND_NOTIFICATIONS(14),
    /** Bit 15: GET_MAX_MEM_SLOTS, ADD_MEM_REG, REM_MEM_REG. */
    CONFIGURE_MEM_SLOTS(15),
    /** Bit 16: SET/GET_STATUS. */
    STATUS(16),
    /** Bit 17: Xen foreign/grant mappings (memory regions grow two fields). */
    XEN_MMAP(17),
    /** Bit 18: GET_SHARED_OBJECT and the back-end SHARED_OBJECT_* messages. */
    SHARED_OBJECT(18),
    /** Bit 19: SET_DEVICE_STATE_FD and CHECK_DEVICE_STATE. */
    DEVICE_STATE(19),
    /** Bit 20: GET_VRING_BASE may leave requests in flight instead of draining them. */
    GET_VRING_BASE_INFLIGHT(20),
    /** Bit 21: ring addresses are guest-physical addresses instead of front-end user addresses. */
    GPA_ADDRESSES(21),
    /** Bit 22: VIRTIO shared memory regions (GET_SHMEM_CONFIG, back-end SHMEM_MAP/UNMAP). */
    SHMEM(22);

    private static final ProtocolFeature[] VALUES = values();
    /** Every bit this enum knows; a peer's other bits are ones outproc never acknowledges. */
    public static final long KNOWN_MASK = (1L << 23) - 1;

    private final int bit;

    ProtocolFeature(int bit) {
        this.bit = bit;
    }

    /** {@return the bit number} */
    public int bit() {
        return bit;
    }

    /** {@return {@code 1L << bit()}} */
    public long mask() {
        return 1L << bit;
    }

    /**
     * {@return whether this feature's bit is set in {@code features}}
     *
     * @param features a protocol feature bit set
     */
    public boolean isSetIn(long features) {
        return (features & mask()) != 0;
    }

    /**
     * {@return the feature with that bit, or {@code null}}
     *
     * @param bit a bit number
     */
    public static ProtocolFeature ofBit(int bit) {
        for (ProtocolFeature f : VALUES) {
            if (f.bit == bit) {
                return f;
            }
        }
        return null;
    }

    /**
     * {@return the union of the masks of {@code features}}
     *
     * @param features the features
     */
    public static long maskOf(ProtocolFeature... features) {
        long mask = 0;
        for (ProtocolFeature f : features) {
            mask |= f.mask();
        }
        return mask;
    }

    /**
     * {@return the names of the features set in a mask, joined by {@code |} (unknown bits as {@code bitN}),
     * for logs}
     *
     * @param features a protocol feature mask
     */
    public static String describe(long features) {
        StringBuilder names = new StringBuilder();
        for (int bit = 0; bit < 64; bit++) {
            if ((features & (1L << bit)) == 0) {
                continue;
            }
            if (!names.isEmpty()) {
                names.append('|');
            }
            ProtocolFeature f = ofBit(bit);
            names.append(f == null ? "bit" + bit : f.name());
        }
        return names.isEmpty() ? "none" : names.toString();
    }
}
