package dev.outproc.vhost.message;

import dev.outproc.core.virtio.FeatureBit;

/**
 * The feature bits that vhost-user adds to the virtio feature word of GET/SET_FEATURES; the virtio bits
 * themselves are {@link dev.outproc.core.virtio.VirtioFeature}. Sources: vhost-user.rst (bit 30
 * {@code VHOST_USER_F_PROTOCOL_FEATURES}) and Linux {@code vhost.h} (bit 26 {@code VHOST_F_LOG_ALL}).
 */
public enum VhostUserFeature implements FeatureBit {
    /** Bit 26: {@code VHOST_F_LOG_ALL}, the back-end logs every guest write (migration). */
    LOG_ALL(26),
    /** Bit 30: {@code VHOST_USER_F_PROTOCOL_FEATURES}, protocol feature negotiation. */
    PROTOCOL_FEATURES(30);

    private final int bit;

    VhostUserFeature(int bit) {
        this.bit = bit;
    }

    @Override
    public int bit() {
        return bit;
    }
}
