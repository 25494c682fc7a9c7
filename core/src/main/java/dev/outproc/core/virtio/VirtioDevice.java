package dev.outproc.core.virtio;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;

/**
 * A virtio device, independent of the transport that serves it: what a device author implements. The
 * transport runs everything else: vhost-user (feature and protocol negotiation, memory table, rings,
 * notifications, logging, inflight tracking, reconnection) or vfio-user's virtio-pci (configuration
 * structures in a BAR, MSI-X, DMA).
 *
 * <h2 id="threads">Threads</h2>
 * {@link #processQueue} runs on the queue's worker thread; the other methods on the transport's control
 * thread. A transport never calls {@link #processQueue} for a queue while it changes that queue or the
 * guest memory: those changes wait for the call to return.
 *
 * <h2 id="type">Device type</h2>
 * {@link #deviceType()} names the virtio device type (VIRTIO 1.3 §5). A transport that presents the
 * device to a guest (virtio-pci over vfio-user) derives the PCI device id from it. Over vhost-user the
 * front-end picks the type itself (QEMU's {@code -device vhost-user-blk-pci} makes a block device
 * whatever the back-end is), so the value is informational there.
 *
 * {@snippet :
 * final class NullDevice implements VirtioDevice {
 *     public int deviceType() { return VirtioDeviceType.ENTROPY; }
 *     public long features() { return VirtioFeature.VERSION_1.mask(); }
 *     public int queueCount() { return 1; }
 *     public void processQueue(VirtioQueue queue) throws IOException {
 *         queue.drain(chain -> 0);   // consume every buffer, write nothing
 *     }
 * }
 * }
 */
public interface VirtioDevice {
    /**
     * {@return the virtio device type (a {@link VirtioDeviceType} constant), or 0 when unspecified}
     * Default 0: enough for vhost-user, where the front-end picks the type; a virtio-pci transport
     * refuses a device without one.
     */
    default int deviceType() {
        return 0;
    }

    /** {@return the virtio features the device offers (device-type bits and {@link VirtioFeature}s)} */
    long features();

    /** {@return the number of queues} */
    int queueCount();

    /**
     * {@return the worker group of a queue: queues in one group are served by one worker thread}
     * A device that moves buffers between queues (a net queue pair's loopback) puts them in one group; a
     * transport with fewer workers than groups gives a worker several groups, never splits one. Default:
     * every queue its own group.
     *
     * @param queueIndex the queue, {@code 0..queueCount()-1}
     */
    default int workerGroup(int queueIndex) {
        return queueIndex;
    }

    /** {@return the largest queue size the device accepts: a power of two, at most 32768; default 1024} */
    default int maxQueueSize() {
        return 1024;
    }

    /** {@return the size of the device-specific configuration space in bytes, at most 256; default 0 (none)} */
    default int configSize() {
        return 0;
    }

    /**
     * Reads the device-specific configuration space. Default: zeros.
     *
     * @param offset where to start, {@code 0 <= offset} and {@code offset + destination.byteSize() <= configSize()}
     * @param destination where to put {@code destination.byteSize()} bytes
     */
    default void readConfig(int offset, MemorySegment destination) {
        destination.fill((byte) 0);
    }

    /**
     * Writes the device-specific configuration space (from the driver). Default: refused.
     *
     * @param offset where to start
     * @param source the bytes
     * @throws IOException when the device refuses the write (the transport reports an error)
     */
    default void writeConfig(int offset, MemorySegment source) throws IOException {
        throw new IOException("configuration space is read-only");
    }

    /**
     * Handles the work on a queue: pop chains, process them, complete them, notify the guest
     * ({@link VirtioQueue#drain} does all of it for request-response devices). Called on the queue's
     * worker thread after a guest notification, and once when a queue starts or is enabled, so that no
     * notification is lost.
     *
     * @param queue the queue
     * @throws IOException to mark the queue broken (the transport logs it and reports the error)
     */
    void processQueue(VirtioQueue queue) throws IOException;

    /**
     * A queue started and will be processed. Default: nothing.
     *
     * @param queue the queue
     */
    default void queueStarted(VirtioQueue queue) {
    }

    /**
     * A queue stopped (the driver or transport took it away, a reset, a disconnect); it is not processed
     * until started again. Its {@link VirtioQueue#queue()} still shows its final position. Default: nothing.
     *
     * @param queue the queue
     */
    default void queueStopped(VirtioQueue queue) {
    }

    /**
     * A queue was enabled or disabled. Default: nothing.
     *
     * @param queue the queue
     * @param enabled the new state
     */
    default void queueEnabled(VirtioQueue queue, boolean enabled) {
    }

    /**
     * The driver acknowledged features; may be called again (for example when a transport toggles
     * dirty logging). Default: nothing.
     *
     * @param features the acknowledged virtio features
     */
    default void featuresNegotiated(long features) {
    }

    /**
     * The driver set the device status (a {@link VirtioStatus} bit set). Default: nothing.
     *
     * @param status the status byte
     */
    default void statusChanged(int status) {
    }

    /** The device is reset (by the driver, the transport, or a new connection): forget driver state. Default: nothing. */
    default void reset() {
    }

    /**
     * {@return whether the device has state to migrate} Default: {@code false}; a device that overrides
     * {@link #saveState} and {@link #loadState} returns {@code true}, and transports offer their
     * device-state transfer (vhost-user's DEVICE_STATE protocol feature) only then.
     */
    default boolean migratable() {
        return false;
    }

    /**
     * Writes the device's state for migration, called with every queue stopped; closing {@code out} is
     * the transport's job. Default: refused.
     *
     * @param out where the state goes
     * @throws IOException when saving fails (the transport reports it)
     */
    default void saveState(WritableByteChannel out) throws IOException {
        throw new IOException("this device has no migratable state");
    }

    /**
     * Reads the device's state until end of stream, called with every queue stopped. Default: refused.
     *
     * @param in where the state comes from
     * @throws IOException when the state is refused (the transport reports it)
     */
    default void loadState(ReadableByteChannel in) throws IOException {
        throw new IOException("this device has no migratable state");
    }
}
