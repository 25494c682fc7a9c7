package dev.outproc.vhost.message;

/**
 * The u64 of SET_VRING_KICK, SET_VRING_CALL and SET_VRING_ERR (and the first word of a
 * {@link VringArea}): "Bits (0-7) of the payload contain the vring index. Bit 8 is the invalid FD flag"
 * (vhost-user.rst). With bit 8 set no fd comes, and the ring is polled instead. The other bits are not
 * defined; {@link MessageValidator} rejects them (as rust-vmm and Linux vhost do).
 */
public final class VringFdIndex {
    /** Bits 0–7: the ring index. */
    public static final long INDEX_MASK = 0xFF;
    /** Bit 8: no fd in the ancillary data. */
    public static final long NO_FD_FLAG = 0x100;
    /** Every bit defined. */
    public static final long KNOWN_BITS = INDEX_MASK | NO_FD_FLAG;

    private VringFdIndex() {
    }

    /**
     * {@return the ring index}
     *
     * @param value the u64 payload
     */
    public static int index(long value) {
        return (int) (value & INDEX_MASK);
    }

    /**
     * {@return whether the "no fd" bit is set}
     *
     * @param value the u64 payload
     */
    public static boolean noFd(long value) {
        return (value & NO_FD_FLAG) != 0;
    }

    /**
     * {@return the u64 for a ring index and the "no fd" bit}
     *
     * @param index the ring index, 0–255
     * @param noFd whether no fd comes with the message
     * @throws IllegalArgumentException when the index does not fit in 8 bits
     */
    public static long encode(int index, boolean noFd) {
        WireLayout.checkU8("index", index);
        return index | (noFd ? NO_FD_FLAG : 0);
    }
}
