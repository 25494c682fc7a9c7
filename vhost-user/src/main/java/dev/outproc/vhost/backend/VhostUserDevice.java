package dev.outproc.vhost.backend;

import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.vhost.message.ProtocolFeature;

import java.io.IOException;

/**
 * A {@link VirtioDevice} with what only vhost-user has: protocol features of the device's own, and the
 * net-specific requests NET_SET_MTU and SEND_RARP. A device that needs none of these implements
 * {@link VirtioDevice} and hands it to {@link VhostUserBackend} directly; this interface exists for the
 * rest. {@link VhostUserBackend} runs the protocol (negotiation, memory table, rings, notifications,
 * logging, inflight tracking, reconnection).
 *
 * {@snippet :
 * final class NetWithMtu implements VhostUserDevice {
 *     public int deviceType() { return VirtioDeviceType.NET; }
 *     public long features() { return VirtioFeature.VERSION_1.mask(); }
 *     public long protocolFeatures() { return ProtocolFeature.MTU.mask(); }
 *     public int queueCount() { return 2; }
 *     public void processQueue(VirtioQueue queue) throws IOException {
 *         queue.drain(chain -> 0);
 *     }
 *     public void setMtu(int mtu) { }
 * }
 * }
 */
public interface VhostUserDevice extends VirtioDevice {
    /**
     * {@return the protocol features the device itself supports, beyond those the library implements}
     * Default 0. Only {@link VhostUserBackend#DEVICE_PROTOCOL_FEATURES} count (MTU, RARP, CONFIG); others
     * are ignored. The library offers its own ({@link VhostUserBackend#LIBRARY_PROTOCOL_FEATURES}) to every
     * device, adds CONFIG when {@link #configSize()} is non-zero and DEVICE_STATE when the device is
     * {@link #migratable()}; a net device sets, for example, {@link ProtocolFeature#MTU} or
     * {@link ProtocolFeature#RARP} here.
     */
    default long protocolFeatures() {
        return 0;
    }

    /**
     * Handles VHOST_USER_NET_SET_MTU (offered only when the device sets the MTU protocol feature).
     * Default: refused.
     *
     * @param mtu the MTU
     * @throws IOException when refused
     */
    default void setMtu(int mtu) throws IOException {
        throw new IOException("MTU is not supported by this device");
    }

    /**
     * Handles VHOST_USER_SEND_RARP (offered only when the device sets the RARP protocol feature).
     * Default: refused.
     *
     * @param mac the guest's MAC address, 6 bytes
     * @throws IOException when refused
     */
    default void sendRarp(byte[] mac) throws IOException {
        throw new IOException("RARP is not supported by this device");
    }

    /**
     * {@return {@code device} as a vhost-user device: itself when it is one, else a view that adds the
     * vhost-only defaults}
     *
     * @param device any virtio device
     */
    static VhostUserDevice of(VirtioDevice device) {
        if (device instanceof VhostUserDevice v) {
            return v;
        }
        return new VirtioDeviceAdapter(device);
    }
}
