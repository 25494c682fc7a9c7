package dev.outproc.vhost.message;

/**
 * The {@code num} word of SET_VRING_BASE and of the GET_VRING_BASE reply (vhost-user.rst, "A vring
 * descriptor index for split virtqueues" and "Vring descriptor indices for packed virtqueues").
 *
 * <pre>
 * split:   bits 0-15  next available index (free-running); bits 16-31 reserved, 0
 * packed:  bits 0-14  next available index    bit 15  driver (avail) wrap counter
 *          bits 16-30 next used index         bit 31  device (used) wrap counter
 * </pre>
 *
 * <p>Which form applies depends on the negotiated {@link dev.outproc.core.virtio.VirtioFeature#RING_PACKED}, so the syntax
 * layer cannot check it: {@link #isValidSplit(long)} is for the back-end.
 */
public final class VringDescriptorIndices {
    /** Split: bits 0–15, the next available index. */
    public static final long SPLIT_AVAIL_MASK = 0xFFFF;
    /** Packed: bits 0–14 (and 16–30 after shifting), a ring index. */
    public static final long PACKED_INDEX_MASK = 0x7FFF;
    /** Packed: bit 15, the avail wrap counter. */
    public static final long PACKED_AVAIL_WRAP = 1L << 15;
    /** Packed: shift of the used half. */
    public static final int PACKED_USED_SHIFT = 16;
    /** Packed: bit 31, the used wrap counter. */
    public static final long PACKED_USED_WRAP = 1L << 31;

    private VringDescriptorIndices() {
    }

    /**
     * {@return the split-ring word for a next available index}
     *
     * @param nextAvail the next available index, 0–65535
     */
    public static long split(int nextAvail) {
        WireLayout.checkU16("nextAvail", nextAvail);
        return nextAvail;
    }

    /**
     * {@return whether a split-ring word keeps its reserved bits 16–31 zero}
     *
     * @param num the word
     */
    public static boolean isValidSplit(long num) {
        return (num & ~SPLIT_AVAIL_MASK) == 0;
    }

    /**
     * {@return the next available index of a split-ring word}
     *
     * @param num the word
     */
    public static int splitAvail(long num) {
        return (int) (num & SPLIT_AVAIL_MASK);
    }

    /**
     * {@return the packed-ring word}
     *
     * @param availIndex next available index, 0–32767
     * @param availWrap the driver ring wrap counter
     * @param usedIndex next used index, 0–32767
     * @param usedWrap the device ring wrap counter
     * @throws IllegalArgumentException when an index does not fit in 15 bits
     */
    public static long packed(int availIndex, boolean availWrap, int usedIndex, boolean usedWrap) {
        if ((availIndex & ~PACKED_INDEX_MASK) != 0 || (usedIndex & ~PACKED_INDEX_MASK) != 0) {
            throw new IllegalArgumentException("packed ring indices have 15 bits, availIndex=" + availIndex
                    + ", usedIndex=" + usedIndex);
        }
        return availIndex | (availWrap ? PACKED_AVAIL_WRAP : 0)
                | ((long) usedIndex << PACKED_USED_SHIFT) | (usedWrap ? PACKED_USED_WRAP : 0);
    }

    /**
     * {@return the next available index of a packed-ring word (bits 0–14)}
     *
     * @param num the word
     */
    public static int packedAvailIndex(long num) {
        return (int) (num & PACKED_INDEX_MASK);
    }

    /**
     * {@return the avail wrap counter of a packed-ring word (bit 15)}
     *
     * @param num the word
     */
    public static boolean packedAvailWrap(long num) {
        return (num & PACKED_AVAIL_WRAP) != 0;
    }

    /**
     * {@return the next used index of a packed-ring word (bits 16–30)}
     *
     * @param num the word
     */
    public static int packedUsedIndex(long num) {
        return (int) ((num >>> PACKED_USED_SHIFT) & PACKED_INDEX_MASK);
    }

    /**
     * {@return the used wrap counter of a packed-ring word (bit 31)}
     *
     * @param num the word
     */
    public static boolean packedUsedWrap(long num) {
        return (num & PACKED_USED_WRAP) != 0;
    }
}
