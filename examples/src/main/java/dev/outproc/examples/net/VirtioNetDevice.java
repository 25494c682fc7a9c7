package dev.outproc.examples.net;

import dev.outproc.core.virtqueue.DescriptorChain;
import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.core.virtio.VirtioDeviceType;
import dev.outproc.core.virtio.VirtioQueue;
import dev.outproc.core.virtio.VirtioFeature;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HexFormat;

import static dev.outproc.core.memory.Layouts.LE_U16;

/**
 * A virtio-net device (VIRTIO 1.2 §5.1) with one or more queue pairs: receiveq<i>n</i> at index
 * {@code 2n}, transmitq<i>n</i> at {@code 2n + 1}, and with more than one pair the control queue at
 * {@code 2N} (§5.1.2). What happens to frames is the {@link Mode}: transmitted frames are copied out and
 * delivered back on the same pair's receive queue ({@link Mode#LOOPBACK}) or copied out and dropped
 * ({@link Mode#SINK}); or the device transmits frames of a fixed size into every receive buffer the
 * driver posts ({@link Mode#SOURCE}). Each mode touches every byte of every frame once, as a real
 * back-end that hands frames on (DPDK's vhost PMD copies each into an mbuf) does.
 *
 * <p>Offered features: VERSION_1, EVENT_IDX, INDIRECT_DESC, VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS and
 * VIRTIO_NET_F_MRG_RXBUF; with more than one queue pair also VIRTIO_NET_F_MQ and VIRTIO_NET_F_CTRL_VQ
 * (MQ requires CTRL_VQ, §5.1.3.1). No checksum or segmentation offload is offered, so the flags and GSO
 * fields of a transmitted {@code virtio_net_hdr} carry nothing this device must act on (§5.1.6.2).
 *
 * <p>The header is 12 bytes (with {@code num_buffers}) when VERSION_1 or MRG_RXBUF is negotiated and
 * 10 bytes otherwise (§5.1.6 "Device Operation", legacy note in §5.1.6.1).
 *
 * <h2 id="hostile">The guest is untrusted</h2>
 * A transmit chain with device-writable buffers, with fewer readable bytes than a header plus an
 * Ethernet header, or with more than {@link #MAX_TX_CHAIN_BYTES} readable bytes is returned unread and
 * counted in {@link Counters#txDropped()}; the ring keeps working. Every copy goes through
 * {@link DescriptorChain#readReadable} and {@link DescriptorChain#writeWritable}, which check bounds.
 * A frame that finds no receive buffer is dropped and counted in {@link Counters#rxDropped()}. A control
 * command the device does not know is answered VIRTIO_NET_ERR.
 *
 * <p>Transport-neutral: it knows {@link VirtioDevice} and {@link VirtioQueue} only; {@code vhost-user-net}
 * serves it over vhost-user, and a virtio-pci transport can serve the same class.
 *
 * <h2 id="threads">Threads</h2>
 * Loopback moves a frame from a pair's transmit ring to its receive ring on the transmit ring's worker,
 * so {@link #workerGroup} puts both rings of a pair (and the control queue with pair 0) in one group: a
 * back-end with one worker per group runs one worker per queue pair, and never changes a receive ring
 * while its pair's transmit ring is processed. On another arrangement the device detects it and drops
 * instead of touching the receive ring from a foreign thread.
 *
 * <p>The data path allocates nothing: frame buffers, headers and chain arrays are per pair and reused.
 */
public final class VirtioNetDevice implements VirtioDevice {
    /** What happens to frames. */
    public enum Mode {
        /** Every transmitted frame is copied out and delivered back on its pair's receive queue. */
        LOOPBACK,
        /** Transmitted frames are copied out, counted and dropped. */
        SINK,
        /** Transmitted frames are sunk; every receive buffer gets a frame of the configured size. */
        SOURCE;

        /**
         * Parses a mode name as the command line spells it.
         *
         * @param text {@code loopback}, {@code sink} or {@code source}, any case
         * @return the mode
         * @throws IllegalArgumentException for any other text
         */
        public static Mode parse(String text) {
            for (Mode m : values()) {
                if (m.name().equalsIgnoreCase(text)) {
                    return m;
                }
            }
            throw new IllegalArgumentException("the mode is loopback, sink or source, got '" + text + "'");
        }
    }

    /** The first receive queue's index (§5.1.2). */
    public static final int RECEIVEQ = 0;
    /** The first transmit queue's index (§5.1.2). */
    public static final int TRANSMITQ = 1;
    /** VIRTIO_NET_F_MAC: the device has a MAC address in its configuration space. */
    public static final int F_MAC = 5;
    /** VIRTIO_NET_F_MRG_RXBUF: the driver can merge receive buffers ({@code num_buffers}). */
    public static final int F_MRG_RXBUF = 15;
    /** VIRTIO_NET_F_STATUS: the configuration space has a status field. */
    public static final int F_STATUS = 16;
    /** VIRTIO_NET_F_CTRL_VQ: a control queue follows the queue pairs. */
    public static final int F_CTRL_VQ = 17;
    /** VIRTIO_NET_F_MQ: more than one queue pair (steering set through the control queue). */
    public static final int F_MQ = 22;
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
    /** The largest frame the source sends: what a transmit chain may carry after its header. */
    public static final int MAX_FRAME_BYTES = MAX_TX_CHAIN_BYTES - HEADER_BYTES;
    /** The most queue pairs: VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX is 0x8000, the vhost-user back-end's 256 queues bound it first. */
    public static final int MAX_QUEUE_PAIRS = 127;
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

    /** The packet and byte counters, summed over the queue pairs; read from any thread. */
    public final class Counters {
        private Counters() {
        }

        private long sum(java.util.function.Function<NetQueuePair, java.util.concurrent.atomic.AtomicLong> counter) {
            long total = 0;
            for (NetQueuePair p : pairs) {
                total += counter.apply(p).get();
            }
            return total;
        }

        /** {@return frames the driver transmitted that the device accepted} */
        public long txPackets() {
            return sum(p -> p.txPackets);
        }

        /** {@return bytes of those frames (without the virtio-net header)} */
        public long txBytes() {
            return sum(p -> p.txBytes);
        }

        /** {@return transmit chains returned unread: too short, too long or with writable buffers} */
        public long txDropped() {
            return sum(p -> p.txDropped);
        }

        /** {@return frames delivered on the receive queues} */
        public long rxPackets() {
            return sum(p -> p.rxPackets);
        }

        /** {@return bytes of those frames (without the virtio-net header)} */
        public long rxBytes() {
            return sum(p -> p.rxBytes);
        }

        /** {@return frames that found no receive buffer (or receive buffers too small without MRG_RXBUF)} */
        public long rxDropped() {
            return sum(p -> p.rxDropped);
        }

        /**
         * {@return the XOR, over every frame the sink (and the source's transmit side) copied out, of the
         * frame's first and last eight bytes read as little-endian words; proof that the bytes were read}
         */
        public long sinkFingerprint() {
            long x = 0;
            for (NetQueuePair p : pairs) {
                x ^= p.sinkFingerprint.get();
            }
            return x;
        }

        /**
         * {@return the packet counts of one queue pair: tx, rx, dropped on either side}
         *
         * @param pair the pair, 0-based
         */
        public long[] ofPair(int pair) {
            NetQueuePair p = pairs[pair];
            return new long[] {p.txPackets.get(), p.rxPackets.get(), p.txDropped.get() + p.rxDropped.get()};
        }

        @Override
        public String toString() {
            return "tx " + txPackets() + " pkts " + txBytes() + " B, tx dropped " + txDropped()
                    + "; rx " + rxPackets() + " pkts " + rxBytes() + " B, rx dropped " + rxDropped();
        }
    }

    private final Mode mode;
    private final byte[] mac;
    private final int queueSize;
    private final int sourceFrameBytes;
    private final NetQueuePair[] pairs;
    private final NetControlQueue control;
    private final Counters counters = new Counters();
    private final Arena arena = Arena.ofShared();

    private volatile long negotiated;

    /**
     * Creates a device with one queue pair; a source sends 64-byte frames.
     *
     * @param mode loopback, sink or source
     * @param mac the MAC address, 6 bytes
     * @param queueSize the largest queue size (a power of two, 2..32768)
     */
    public VirtioNetDevice(Mode mode, byte[] mac, int queueSize) {
        this(mode, mac, queueSize, 1, 64);
    }

    /**
     * Creates the device.
     *
     * @param mode loopback, sink or source
     * @param mac the MAC address, 6 bytes
     * @param queueSize the largest queue size (a power of two, 2..32768)
     * @param queuePairs queue pairs, 1..{@link #MAX_QUEUE_PAIRS}; more than one offers MQ and a control queue
     * @param sourceFrameBytes the size of the frames {@link Mode#SOURCE} sends (an Ethernet frame without
     *        its FCS: {@link #ETHERNET_HEADER_BYTES}..{@link #MAX_FRAME_BYTES})
     */
    public VirtioNetDevice(Mode mode, byte[] mac, int queueSize, int queuePairs, int sourceFrameBytes) {
        if (mac.length != 6) {
            throw new IllegalArgumentException("a MAC address has 6 bytes, length=" + mac.length);
        }
        if (queueSize < 2 || queueSize > 32768 || Integer.bitCount(queueSize) != 1) {
            throw new IllegalArgumentException("queueSize must be a power of two in 2..32768, queueSize=" + queueSize);
        }
        if (queuePairs < 1 || queuePairs > MAX_QUEUE_PAIRS) {
            throw new IllegalArgumentException("queuePairs must be 1.." + MAX_QUEUE_PAIRS + ", queuePairs=" + queuePairs);
        }
        if (sourceFrameBytes < ETHERNET_HEADER_BYTES || sourceFrameBytes > MAX_FRAME_BYTES) {
            throw new IllegalArgumentException("sourceFrameBytes must be " + ETHERNET_HEADER_BYTES + ".." + MAX_FRAME_BYTES
                    + ", sourceFrameBytes=" + sourceFrameBytes);
        }
        this.mode = mode;
        this.mac = mac.clone();
        this.queueSize = queueSize;
        this.sourceFrameBytes = sourceFrameBytes;
        this.pairs = new NetQueuePair[queuePairs];
        for (int i = 0; i < queuePairs; i++) {
            pairs[i] = new NetQueuePair(i, mode, sourceFrameBytes, this.mac, queueSize, arena);
        }
        this.control = queuePairs > 1 ? new NetControlQueue(queuePairs) : null;
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

    /** {@return the number of queue pairs} */
    public int queuePairs() {
        return pairs.length;
    }

    /** {@return the size of the frames the source sends} */
    public int sourceFrameBytes() {
        return sourceFrameBytes;
    }

    /** {@return the queue pairs the driver asked for with VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET (1 until it does)} */
    public int activeQueuePairs() {
        return control == null ? 1 : control.activePairs();
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
        long f = VirtioFeature.maskOf(VirtioFeature.VERSION_1, VirtioFeature.EVENT_IDX, VirtioFeature.INDIRECT_DESC)
                | (1L << F_MAC) | (1L << F_STATUS) | (1L << F_MRG_RXBUF);
        return control == null ? f : f | (1L << F_MQ) | (1L << F_CTRL_VQ);
    }

    @Override
    public int queueCount() {
        return control == null ? 2 * pairs.length : 2 * pairs.length + 1;
    }

    /** Both rings of a pair share a worker; the control queue goes with pair 0. */
    @Override
    public int workerGroup(int queueIndex) {
        return queueIndex >= 2 * pairs.length ? 0 : queueIndex / 2;
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
        c.set(LE_U16, 8, (short) pairs.length);
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
        if (control != null) {
            control.reset();
        }
    }

    @Override
    public void queueStarted(VirtioQueue vring) {
        int i = vring.index();
        if (i < 2 * pairs.length && i % 2 == 0) {
            pairs[i / 2].receiveStarted(vring);
        }
    }

    @Override
    public void queueStopped(VirtioQueue vring) {
        int i = vring.index();
        if (i < 2 * pairs.length && i % 2 == 0) {
            pairs[i / 2].receiveStopped();
        }
    }

    @Override
    public void processQueue(VirtioQueue vring) throws IOException {
        int i = vring.index();
        if (i >= 2 * pairs.length) {
            if (control != null) {
                control.process(vring);
            }
            return;
        }
        NetQueuePair pair = pairs[i >>> 1];
        if ((i & 1) == 0) {
            pair.processReceive(vring, negotiated);
        } else {
            pair.processTransmit(vring, negotiated);
        }
    }
}
