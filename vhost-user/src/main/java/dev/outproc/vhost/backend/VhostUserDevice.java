package dev.outproc.vhost.backend;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;

/**
 * What a device author implements to get a vhost-user back-end: the device's features, queues,
 * configuration space, request handling and state. {@link VhostUserBackend} runs everything else
 * (negotiation, memory table, rings, notifications, logging, inflight tracking, reconnection).
 *
 * <h2 id="threads">Threads</h2>
 * {@link #processQueue} and the ring callbacks run on the queue's worker thread; the other methods on
 * the connection thread. The library never calls {@link #processQueue} for a ring while it changes that
 * ring or the memory table: those changes wait for the handler to return.
 *
 * {@snippet :
 * final class NullDevice implements VhostUserDevice {
 *     public long features() { return VirtioFeature.VERSION_1.mask(); }
 *     public int queueCount() { return 1; }
 *     public void processQueue(Vring vring) throws IOException {
 *         DescriptorChain chain;
 *         while ((chain = vring.pop()) != null) {
 *             vring.complete(chain, 0);   // consume every buffer, write nothing
 *         }
 *         vring.notifyGuest();
 *     }
 * }
 * }
 */
public interface VhostUserDevice {
    /** {@return the virtio features the device offers (the library adds the protocol's own bits)} */
    long features();

    /**
     * {@return the protocol features the device itself supports, beyond those the library implements
     * (for example CONFIG when {@link #configSize()} is non-zero is added automatically)} Usually 0.
     */
    default long protocolFeatures() {
        return 0;
    }

    /** {@return the number of queues} */
    int queueCount();

    /** {@return the largest queue size the device accepts (a power of two, at most 32768)} */
    default int maxQueueSize() {
        return 1024;
    }

    /** {@return the size of the device's configuration space in bytes, 0 for none (at most 256)} */
    default int configSize() {
        return 0;
    }

    /**
     * Reads the configuration space.
     *
     * @param offset where to start
     * @param destination where to put {@code destination.byteSize()} bytes
     */
    default void readConfig(int offset, MemorySegment destination) {
        destination.fill((byte) 0);
    }

    /**
     * Writes the configuration space (from the driver).
     *
     * @param offset where to start
     * @param source the bytes
     * @throws IOException when the device refuses the write (the front-end gets an error)
     */
    default void writeConfig(int offset, MemorySegment source) throws IOException {
        throw new IOException("configuration space is read-only");
    }

    /**
     * Handles the work on a ring: pop chains, process them, complete them, notify the guest. Called on
     * the ring's worker thread after a kick (and once when a ring starts or is enabled, so that no kick
     * is lost).
     *
     * @param vring the ring
     * @throws IOException to mark the ring broken (the library logs it and signals the ring's error fd)
     */
    void processQueue(Vring vring) throws IOException;

    /**
     * A ring started (it has memory, addresses and a kick) and will be processed.
     *
     * @param vring the ring
     */
    default void queueStarted(Vring vring) {
    }

    /**
     * A ring stopped (GET_VRING_BASE, reset or disconnect); it is not processed until started again.
     *
     * @param vring the ring
     */
    default void queueStopped(Vring vring) {
    }

    /**
     * A ring was enabled or disabled (SET_VRING_ENABLE).
     *
     * @param vring the ring
     * @param enabled the new state
     */
    default void queueEnabled(Vring vring, boolean enabled) {
    }

    /**
     * The front-end acknowledged features (SET_FEATURES); may be called again (for example when
     * F_LOG_ALL toggles during migration).
     *
     * @param features the acknowledged virtio features
     */
    default void featuresNegotiated(long features) {
    }

    /**
     * The driver set the virtio device status (SET_STATUS).
     *
     * @param status the status byte
     */
    default void statusChanged(int status) {
    }

    /** The device is reset (RESET_DEVICE, RESET_OWNER, or a new front-end): forget driver state. */
    default void reset() {
    }

    /**
     * Writes the device's state for migration (SET_DEVICE_STATE_FD, direction save). Called with every
     * ring stopped; closing is the library's job.
     *
     * @param out where the state goes
     * @throws IOException when saving fails (CHECK_DEVICE_STATE reports it)
     */
    default void saveState(WritableByteChannel out) throws IOException {
        throw new IOException("this device has no migratable state");
    }

    /**
     * Reads the device's state (SET_DEVICE_STATE_FD, direction load) until end of stream.
     *
     * @param in where the state comes from
     * @throws IOException when the state is refused (CHECK_DEVICE_STATE reports it)
     */
    default void loadState(ReadableByteChannel in) throws IOException {
        throw new IOException("this device has no migratable state");
    }

    /**
     * Handles VHOST_USER_NET_SET_MTU (offered only when the device sets the MTU protocol feature).
     *
     * @param mtu the MTU
     * @throws IOException when refused
     */
    default void setMtu(int mtu) throws IOException {
        throw new IOException("MTU is not supported by this device");
    }

    /**
     * Handles VHOST_USER_SEND_RARP (offered only when the device sets the RARP protocol feature).
     *
     * @param mac the guest's MAC address, 6 bytes
     * @throws IOException when refused
     */
    default void sendRarp(byte[] mac) throws IOException {
        throw new IOException("RARP is not supported by this device");
    }
}
