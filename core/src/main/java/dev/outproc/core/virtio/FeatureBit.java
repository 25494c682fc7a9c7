package dev.outproc.core.virtio;

/**
 * A named bit of a 64-bit feature word. The virtio feature bits ({@link VirtioFeature}) implement it, and
 * so do a transport's own feature words (vhost-user's additions to the virtio word and its protocol
 * features), so that the mask and the test of a bit are written once.
 */
public interface FeatureBit {
    /** {@return the bit number, 0 to 63} */
    int bit();

    /** {@return {@code 1L << bit()}} */
    default long mask() {
        return 1L << bit();
    }

    /**
     * {@return whether this feature's bit is set in {@code features}}
     *
     * @param features a feature word
     */
    default boolean isSetIn(long features) {
        return (features & mask()) != 0;
    }

    /**
     * {@return the union of the masks of {@code features}}
     *
     * @param features the features
     */
    static long maskOf(FeatureBit... features) {
        long mask = 0;
        for (FeatureBit feature : features) {
            mask |= feature.mask();
        }
        return mask;
    }
}
