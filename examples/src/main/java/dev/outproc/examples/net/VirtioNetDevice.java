package dev.outproc.examples.net;

import dev.outproc.core.virtqueue.DescriptorChain;
import dev.outproc.core.virtqueue.DeviceQueue;
import dev.outproc.core.virtqueue.VirtqueueException;
import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.core.virtio.VirtioDeviceType;
import dev.outproc.core.virtio.VirtioQueue;
import dev.outproc.core.virtio.VirtioFeature;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.HexFormat;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A virtio-net device (VIRTIO 1.2 §5.1) with one queue pair: receiveq 0 and transmitq 1.
 * Frames the driver transmits are either delivered back on the receive queue ({@link Mode#LOOPBACK})
 * or counted and dropped ({@link Mode#SINK}).
 *
 * <p>Offered features: VERSION_1, EVENT_IDX, INDIRECT_DESC, VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS and
 * VIRTIO_NET_F_MRG_RXBUF. No checksum or segmentation offload is offered, so the flags and GSO fields
 * of a transmitted {@code virtio_net_hdr} carry nothing this device must act on (§5.1.6.2).
 *
 * <p>The header is 12 bytes (with {@code num_buffers}) when VERSION_1 or MRG_RXBUF is negotiated and
 * 10 bytes otherwise (§5.1.6 "Device Operation", legacy note in §5.1.6.1).
 *
 * <h2 id="hostile">The guest is untrusted</h2>
 * A transmit chain with device-writable buffers, with fewer readable bytes than a header plus an
 * Ethernet header, or with more than {@link #MAX_TX_CHAIN_BYTES} readable bytes is returned unread and
 * counted in {@link Counters#txDropped}; the ring keeps working. Every copy goes through
 * {@link DescriptorChain#readReadable} and {@link DescriptorChain#writeWritable}, which check bounds.
 * A frame that finds no receive buffer is dropped and counted in {@link Counters#rxDropped}.
 *
 * <p>Transport-neutral: it knows {@link VirtioDevice} and {@link VirtioQueue} only; {@code vhost-user-net}
 * serves it over vhost-user, and a virtio-pci transport can serve the same class.
 *
 * <h2 id="threads">Threads</h2>
 * Loopback moves a frame from the transmit ring to the receive ring on the transmit ring's worker, so
 * both rings must share one worker: run the back-end with {@code new VhostUserBackend.Options(1, ...)}.
 * The library then never changes the receive ring while the transmit ring is processed. On a different
 * arrangement the device detects it and drops instead of touching the receive ring from a foreign thread.
 *
 * <p>The data path allocates nothing: the frame buffer and the header are reused.
 */
public final class VirtioNetDevice implements VirtioDevice {
    /** What happens to transmitted frames. */
    public enum Mode {
        /** Every transmitted frame is delivered back on the receive queue. */
        LOOPBACK,
        /** Transmitted frames are counted and dropped. */
        SINK
    }

    /** The receive queue's index (§5.1.2). */
    public static final int RECEIVEQ = 0;
    /** The transmit queue's index (§5.1.2). */
    public static final int TRANSMITQ = 1;
    /** VIRTIO_NET_F_MAC: the device has a MAC address in its configuration space. */
    public static final int F_MAC = 5;
    /** VIRTIO_NET_F_MRG_RXBUF: the driver can merge receive buffers ({@code num_buffers}). */
    public static final int F_MRG_RXBUF = 15;
    /** VIRTIO_NET_F_STATUS: the configuration space has a status field. */
    public static final int F_STATUS = 16;
    /** VIRTIO_NET_S_LINK_UP in the status field. */
    public static final int S_LINK_UP = 1;
    /** The header with {@code num_buffers} (VERSION_1 or MRG_RXBUF). */
    public static final int HEADER_BYTES = 12;
    /** The legacy header without {@code num_buffers}. */
    public static final int LEGACY_HEADER_BYTES = 10;
    /** Where {@code num_buffers} sits in the 12-byte header. */
    public static final int NUM_BUFFERS_OFFSET = 10;
    /** An Ethernet header: the shortest frame accepted for transmission. */
    public static final int ETHERNET_HEADER_BYTES = 14;
    /**
     * The most readable bytes a transmit chain may have: a 12-byte header and a 65,550-byte frame
     * (a 65,535-byte IP packet with its Ethernet and VLAN headers), the size Linux's virtio-net uses for
     * its big receive buffers.
     */
    public static final int MAX_TX_CHAIN_BYTES = 65_562;
    /**
     * Configuration space (§5.1.4), little-endian:
     * <pre>
     *  0       6        8                      10
     *  +-------+--------+----------------------+
     *  | mac   | status | max_virtqueue_pairs  |
     *  +-------+--------+----------------------+
     * </pre>
     * {@code mtu} (offset 10) is absent: VIRTIO_NET_F_MTU is not offered.
     */
    public static final int CONFIG_SIZE = 10;

    private static final ValueLayout.OfShort LE_U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final System.Logger LOG = System.getLogger(VirtioNetDevice.class.getName());

    /** The packet and byte counters; read from any thread. */
    public static final class Counters {
        /** Frames the driver transmitted that the device accepted. */
        public final AtomicLong txPackets = new AtomicLong();
        /** Bytes of those frames (without the virtio-net header). */
        public final AtomicLong txBytes = new AtomicLong();
        /** Transmit chains returned unread: too short, too long or with writable buffers. */
        public final AtomicLong txDropped = new AtomicLong();
        /** Frames delivered on the receive queue. */
        public final AtomicLong rxPackets = new AtomicLong();
        /** Bytes of those frames (without the virtio-net header). */
        public final AtomicLong rxBytes = new AtomicLong();
        /** Frames that found no receive buffer (or receive buffers too small without MRG_RXBUF). */
        public final AtomicLong rxDropped = new AtomicLong();

        private Counters() {
        }

        @Override
        public String toString() {
            return "tx " + txPackets.get() + " pkts " + txBytes.get() + " B, tx dropped " + txDropped.get()
                    + "; rx " + rxPackets.get() + " pkts " + rxBytes.get() + " B, rx dropped " + rxDropped.get();
        }
    }

    private final Mode mode;
    private final byte[] mac;
    private final int queueSize;
    private final Counters counters = new Counters();
    private final Arena arena = Arena.ofShared();
    /** One frame, reused: only the transmit ring's worker uses it. */
    private final MemorySegment frame;
    /** The receive header, reused. */
    private final MemorySegment rxHeader;
    /** Receive chains popped for a frame that then found too few buffers; used first for the next frame. */
    private final DescriptorChain[] heldRx;
    private int heldRxCount;
    private final DescriptorChain[] gathered;

    private volatile long negotiated;
    private volatile VirtioQueue receiveRing;
    private volatile Thread receiveWorker;
    private volatile boolean warnedForeignThread;
    /** Whether the receive ring got used entries since the last notification. */
    private boolean receiveUsed;
    /** The transmit worker's view for one {@link #processQueue} call: header size, MRG_RXBUF, loopback target. */
    private int txHeaderBytes;
    private boolean txMergeable;
    private VirtioQueue txTarget;
    /** Serves one transmit chain; a field, so the transmit path allocates nothing. */
    private final VirtioQueue.ChainHandler transmitHandler = chain -> {
        transmit(chain, txHeaderBytes, txMergeable, txTarget);
        return 0;
    };

    /**
     * Creates the device.
     *
     * @param mode loopback or sink
     * @param mac the MAC address, 6 bytes
     * @param queueSize the largest queue size (a power of two, 2..32768)
     */
    public VirtioNetDevice(Mode mode, byte[] mac, int queueSize) {
        if (mac.length != 6) {
            throw new IllegalArgumentException("a MAC address has 6 bytes, length=" + mac.length);
        }
        if (queueSize < 2 || queueSize > 32768 || Integer.bitCount(queueSize) != 1) {
            throw new IllegalArgumentException("queueSize must be a power of two in 2..32768, queueSize=" + queueSize);
        }
        this.mode = mode;
        this.mac = mac.clone();
        this.queueSize = queueSize;
        this.frame = arena.allocate(MAX_TX_CHAIN_BYTES, 64);
        this.rxHeader = arena.allocate(HEADER_BYTES, 8);
        this.heldRx = new DescriptorChain[queueSize];
        this.gathered = new DescriptorChain[queueSize];
    }

    /**
     * Parses {@code 52:54:00:12:34:56} (or with {@code -}).
     *
     * @param text the MAC address
     * @return its 6 bytes
     * @throws IllegalArgumentException when it is not six hex pairs
     */
    public static byte[] parseMac(String text) {
        String[] parts = text.split("[:-]");
        if (parts.length != 6) {
            throw new IllegalArgumentException("a MAC address is six hex pairs like 52:54:00:12:34:56, got '" + text + "'");
        }
        byte[] b = new byte[6];
        for (int i = 0; i < 6; i++) {
            if (parts[i].length() != 2) {
                throw new IllegalArgumentException("a MAC address is six hex pairs like 52:54:00:12:34:56, got '" + text + "'");
            }
            try {
                b[i] = (byte) HexFormat.fromHexDigits(parts[i]);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("not a hex pair: '" + parts[i] + "' in MAC address '" + text + "'", e);
            }
        }
        return b;
    }

    /** {@return the counters} */
    public Counters counters() {
        return counters;
    }

    /** {@return the mode} */
    public Mode mode() {
        return mode;
    }

    /** {@return the MAC address as {@code 52:54:00:12:34:56}} */
    public String macText() {
        return HexFormat.ofDelimiter(":").formatHex(mac);
    }

    /**
     * {@return the virtio-net header size for the negotiated features: 12 with VERSION_1 or MRG_RXBUF, else 10}
     *
     * @param features the acknowledged features
     */
    public static int headerBytes(long features) {
        boolean longHeader = (features & (VirtioFeature.VERSION_1.mask() | (1L << F_MRG_RXBUF))) != 0;
        return longHeader ? HEADER_BYTES : LEGACY_HEADER_BYTES;
    }

    @Override
    public int deviceType() {
        return VirtioDeviceType.NET;
    }

    @Override
    public long features() {
        return VirtioFeature.maskOf(VirtioFeature.VERSION_1, VirtioFeature.EVENT_IDX, VirtioFeature.INDIRECT_DESC)
                | (1L << F_MAC) | (1L << F_STATUS) | (1L << F_MRG_RXBUF);
    }

    @Override
    public int queueCount() {
        return 2;
    }

    @Override
    public int maxQueueSize() {
        return queueSize;
    }

    @Override
    public int configSize() {
        return CONFIG_SIZE;
    }

    @Override
    public void readConfig(int offset, MemorySegment destination) {
        MemorySegment c = MemorySegment.ofArray(new byte[CONFIG_SIZE]);
        MemorySegment.copy(MemorySegment.ofArray(mac), 0, c, 0, 6);
        c.set(LE_U16, 6, (short) S_LINK_UP);
        c.set(LE_U16, 8, (short) 1);
        MemorySegment.copy(c, offset, destination, 0, destination.byteSize());
    }

    @Override
    public void writeConfig(int offset, MemorySegment source) throws IOException {
        // The MAC is writable only with VIRTIO_NET_F_CTRL_MAC_ADDR on legacy devices; nothing is writable here.
        throw new IOException("virtio-net configuration space is read-only here, offset=" + offset
                + " length=" + source.byteSize());
    }

    @Override
    public void featuresNegotiated(long features) {
        negotiated = features;
    }

    @Override
    public void reset() {
        negotiated = 0;
    }

    @Override
    public void queueStarted(VirtioQueue vring) {
        if (vring.index() == RECEIVEQ) {
            // Runs on the receive ring's worker: loopback checks that it is also the transmit ring's.
            receiveWorker = Thread.currentThread();
            heldRxCount = 0;
            receiveRing = vring;
        }
    }

    @Override
    public void queueStopped(VirtioQueue vring) {
        if (vring.index() == RECEIVEQ) {
            receiveRing = null;
            // Held chains belong to the stopped ring; its base already counts them as consumed.
            heldRxCount = 0;
        }
    }

    @Override
    public void processQueue(VirtioQueue vring) throws IOException {
        if (vring.index() == RECEIVEQ) {
            DeviceQueue queue = vring.queue();
            if (queue != null) {
                // Receive buffers are taken when a frame arrives, never on a kick: ask the driver not to kick.
                queue.disableNotifications();
            }
            return;
        }
        txHeaderBytes = headerBytes(negotiated);
        txMergeable = (negotiated & (1L << F_MRG_RXBUF)) != 0;
        txTarget = loopbackTarget();
        vring.drain(transmitHandler);
        if (receiveUsed) {
            receiveUsed = false;
            txTarget.notifyGuest();
        }
    }

    /** {@return the receive ring when loopback may use it on this thread, else null (frames are then dropped)} */
    private VirtioQueue loopbackTarget() {
        if (mode != Mode.LOOPBACK) {
            return null;
        }
        if (receiveWorker != Thread.currentThread()) {
            if (receiveWorker != null && !warnedForeignThread) {
                warnedForeignThread = true;
                LOG.log(System.Logger.Level.WARNING, "loopback needs both rings on one worker thread "
                        + "(VhostUserBackend.Options with 1 worker); dropping frames");
            }
            return null;
        }
        return receiveRing;
    }

    /** Takes one transmit chain and, in loopback, puts its frame on the receive ring. */
    private void transmit(DescriptorChain chain, int headerBytes, boolean mergeable, VirtioQueue rx) throws VirtqueueException {
        long readable = chain.totalReadable();
        if (chain.writableCount() != 0 || readable < headerBytes + ETHERNET_HEADER_BYTES || readable > MAX_TX_CHAIN_BYTES) {
            counters.txDropped.incrementAndGet();
            return;
        }
        int frameBytes = (int) (readable - headerBytes);
        counters.txPackets.incrementAndGet();
        counters.txBytes.addAndGet(frameBytes);
        if (mode == Mode.SINK) {
            return;
        }
        if (rx == null || !rx.isStarted() || !rx.isEnabled()) {
            // vhost-user "Ring states": a disabled receive ring gets no new packets.
            counters.rxDropped.incrementAndGet();
            return;
        }
        chain.readReadable(headerBytes, frame, 0, frameBytes);
        try {
            receive(rx, frameBytes, headerBytes, mergeable);
        } catch (VirtqueueException e) {
            // The receive ring is broken (the library marked it and signals its error fd); the transmit
            // ring is not at fault and keeps running, its frames dropped.
            heldRxCount = 0;
            counters.rxDropped.incrementAndGet();
        }
    }

    /**
     * Puts {@code frame[0, frameBytes)} on the receive ring behind a zeroed header (§5.1.6.4): in one
     * chain, or with MRG_RXBUF spread over as many chains as needed with {@code num_buffers} set. The
     * chains are published together so that the driver never sees part of a frame.
     */
    private void receive(VirtioQueue rx, int frameBytes, int headerBytes, boolean mergeable) throws VirtqueueException {
        long needed = (long) headerBytes + frameBytes;
        int count = 0;
        long room = 0;
        while (room < needed && (mergeable || count == 0)) {
            DescriptorChain c;
            if (heldRxCount > 0) {
                c = heldRx[--heldRxCount];
            } else {
                c = rx.pop();
                if (c == null) {
                    break;
                }
                if (c.readableCount() != 0 || c.totalWritable() < headerBytes) {
                    // Receive buffers are device-writable and hold at least a header (§5.1.6.3.1):
                    // return a malformed one empty instead of writing into it.
                    rx.complete(c, 0);
                    receiveUsed = true;
                    continue;
                }
            }
            gathered[count++] = c;
            room += c.totalWritable();
        }
        if (room < needed) {
            counters.rxDropped.incrementAndGet();
            if (!mergeable && count == 1) {
                // One buffer per frame and this one is too small for it: give it back empty rather than
                // keep it forever (a driver without MRG_RXBUF posts buffers for the largest frame, §5.1.6.3.1).
                rx.complete(gathered[0], 0);
                receiveUsed = true;
                return;
            }
            // Not enough buffers yet: keep the ones taken for the next frame.
            for (int i = count - 1; i >= 0; i--) {
                heldRx[heldRxCount++] = gathered[i];
            }
            return;
        }
        rxHeader.fill((byte) 0);
        if (headerBytes == HEADER_BYTES) {
            rxHeader.set(LE_U16, NUM_BUFFERS_OFFSET, (short) count);
        }
        DeviceQueue q = rx.queue();
        long frameOffset = 0;
        for (int i = 0; i < count; i++) {
            DescriptorChain c = gathered[i];
            long start = 0;
            if (i == 0) {
                c.writeWritable(0, rxHeader, 0, headerBytes);
                start = headerBytes;
            }
            long n = Math.min(c.totalWritable() - start, frameBytes - frameOffset);
            c.writeWritable(start, frame, frameOffset, n);
            frameOffset += n;
            if (i + 1 < count) {
                q.stageUsed(c, start + n);
            } else {
                rx.complete(c, start + n); // stages the last one and publishes them all
            }
        }
        receiveUsed = true;
        counters.rxPackets.incrementAndGet();
        counters.rxBytes.addAndGet(frameBytes);
    }
}
