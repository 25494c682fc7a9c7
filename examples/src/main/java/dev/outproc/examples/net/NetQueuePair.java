package dev.outproc.examples.net;

import dev.outproc.core.virtio.VirtioQueue;
import dev.outproc.core.virtqueue.DescriptorChain;
import dev.outproc.core.virtqueue.DeviceQueue;
import dev.outproc.core.virtqueue.VirtqueueException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicLong;

import static dev.outproc.core.memory.Layouts.LE_U16;
import static dev.outproc.core.memory.Layouts.LE_U64;
import static dev.outproc.examples.net.VirtioNetDevice.ETHERNET_HEADER_BYTES;
import static dev.outproc.examples.net.VirtioNetDevice.HEADER_BYTES;
import static dev.outproc.examples.net.VirtioNetDevice.MAX_TX_CHAIN_BYTES;
import static dev.outproc.examples.net.VirtioNetDevice.NUM_BUFFERS_OFFSET;

/**
 * One queue pair of {@link VirtioNetDevice} (receiveq<i>n</i> and transmitq<i>n</i>, VIRTIO 1.2 §5.1.2):
 * its frame buffer, its receive buffers taken ahead, and its counters. Both rings of a pair run on one
 * worker thread (the device puts them in one worker group), so nothing here is shared between threads
 * except the counters, which only this pair's worker writes.
 *
 * <p>The data path allocates nothing: the frame buffer, the header and the chain arrays are reused.
 */
final class NetQueuePair {
    /** IEEE 802 "local experimental" EtherType: what the source's frames carry. */
    static final short SOURCE_ETHER_TYPE = (short) 0x88B5;

    private final int pair;
    private final VirtioNetDevice.Mode mode;
    private final int sourceFrameBytes;
    /** One frame, reused: the transmit copy-out target, and the source's template. */
    private final MemorySegment frame;
    /** The receive header, reused. */
    private final MemorySegment rxHeader;
    /** Receive chains popped for a frame that then found too few buffers; used first for the next frame. */
    private final DescriptorChain[] heldRx;
    private int heldRxCount;
    private final DescriptorChain[] gathered;
    private int gatheredCount;
    /** Frames staged on the receive ring and not yet published. */
    private int rxStaged;

    private volatile VirtioQueue receiveRing;
    private volatile Thread receiveWorker;
    private volatile boolean warnedForeignThread;
    /** Whether the receive ring got used entries since the last notification. */
    private boolean receiveUsed;
    /** The transmit worker's view for one {@link #processTransmit} call. */
    private int txHeaderBytes;
    private boolean txMergeable;
    private VirtioQueue txTarget;

    /** Written by this pair's worker only (plain increments published with release stores); read anywhere. */
    final AtomicLong txPackets = new AtomicLong();
    final AtomicLong txBytes = new AtomicLong();
    final AtomicLong txDropped = new AtomicLong();
    final AtomicLong rxPackets = new AtomicLong();
    final AtomicLong rxBytes = new AtomicLong();
    final AtomicLong rxDropped = new AtomicLong();
    /** XOR of the first and last 8 bytes of every frame the sink copied out: proof that it read them. */
    final AtomicLong sinkFingerprint = new AtomicLong();

    /** Serves one transmit chain; a field, so the transmit path allocates nothing. */
    private final VirtioQueue.ChainHandler transmitHandler = chain -> {
        transmit(chain);
        return 0;
    };

    NetQueuePair(int pair, VirtioNetDevice.Mode mode, int sourceFrameBytes, byte[] mac, int queueSize, Arena arena) {
        this.pair = pair;
        this.mode = mode;
        this.sourceFrameBytes = sourceFrameBytes;
        this.frame = arena.allocate(MAX_TX_CHAIN_BYTES, 64);
        this.rxHeader = arena.allocate(HEADER_BYTES, 8);
        this.heldRx = new DescriptorChain[queueSize];
        this.gathered = new DescriptorChain[queueSize];
        if (mode == VirtioNetDevice.Mode.SOURCE) {
            writeSourceFrame(frame, sourceFrameBytes, mac);
        }
    }

    /**
     * Writes the source's frame: broadcast destination, our MAC as source, the local experimental
     * EtherType, then a counting byte pattern.
     */
    static void writeSourceFrame(MemorySegment target, int frameBytes, byte[] mac) {
        for (int i = 0; i < 6; i++) {
            target.set(ValueLayout.JAVA_BYTE, i, (byte) 0xff);
            target.set(ValueLayout.JAVA_BYTE, 6 + i, mac[i]);
        }
        target.set(ValueLayout.JAVA_BYTE, 12, (byte) (SOURCE_ETHER_TYPE >>> 8));
        target.set(ValueLayout.JAVA_BYTE, 13, (byte) SOURCE_ETHER_TYPE);
        for (int i = ETHERNET_HEADER_BYTES; i < frameBytes; i++) {
            target.set(ValueLayout.JAVA_BYTE, i, (byte) i);
        }
    }

    void receiveStarted(VirtioQueue vring) {
        // Runs on the receive ring's worker: loopback checks that it is also the transmit ring's.
        receiveWorker = Thread.currentThread();
        heldRxCount = 0;
        rxStaged = 0;
        receiveRing = vring;
    }

    void receiveStopped() {
        receiveRing = null;
        // Held chains belong to the stopped ring; its base already counts them as consumed.
        heldRxCount = 0;
        rxStaged = 0;
    }

    /**
     * The receive ring's turn. Loopback and sink take receive buffers only when a frame arrives, so the
     * driver's kicks are switched off; the source fills every buffer the driver posted.
     */
    void processReceive(VirtioQueue rx, long negotiated) throws IOException {
        DeviceQueue queue = rx.queue();
        if (queue == null) {
            return;
        }
        if (mode != VirtioNetDevice.Mode.SOURCE) {
            queue.disableNotifications();
            return;
        }
        int headerBytes = VirtioNetDevice.headerBytes(negotiated);
        boolean mergeable = (negotiated & (1L << VirtioNetDevice.F_MRG_RXBUF)) != 0;
        boolean polled = rx.isPolled();
        do {
            queue.disableNotifications();
            try {
                while (gather(rx, (long) headerBytes + sourceFrameBytes, mergeable)) {
                    deliver(rx, sourceFrameBytes, headerBytes, null, 0);
                }
            } finally {
                if (rxStaged > 0) {
                    publishReceived(rx);
                }
                if (receiveUsed) {
                    receiveUsed = false;
                    rx.notifyGuest();
                }
            }
        } while (!polled && queue.enableNotifications() && rx.isStarted());
    }

    /** The transmit ring's turn: every frame is copied out, then sunk or looped back. */
    void processTransmit(VirtioQueue tx, long negotiated) throws IOException {
        txHeaderBytes = VirtioNetDevice.headerBytes(negotiated);
        txMergeable = (negotiated & (1L << VirtioNetDevice.F_MRG_RXBUF)) != 0;
        txTarget = loopbackTarget();
        try {
            tx.drain(transmitHandler);
        } finally {
            if (rxStaged > 0) {
                publishReceived(txTarget);
            }
            if (receiveUsed) {
                receiveUsed = false;
                txTarget.notifyGuest();
            }
        }
    }

    /** {@return the receive ring when loopback may use it on this thread, else null (frames are then dropped)} */
    private VirtioQueue loopbackTarget() {
        if (mode != VirtioNetDevice.Mode.LOOPBACK) {
            return null;
        }
        Thread worker = receiveWorker;
        if (worker != Thread.currentThread()) {
            if (worker != null && !warnedForeignThread) {
                warnedForeignThread = true;
                System.getLogger(VirtioNetDevice.class.getName()).log(System.Logger.Level.WARNING,
                        "queue pair " + pair + ": loopback needs both rings on one worker thread; dropping frames");
            }
            return null;
        }
        return receiveRing;
    }

    private static void add(AtomicLong counter, long n) {
        // Single writer: a release store of the sum, not a locked read-modify-write per frame.
        counter.lazySet(counter.getPlain() + n);
    }

    /** Takes one transmit chain: copies its frame out, then sinks it or puts it on the receive ring. */
    private void transmit(DescriptorChain chain) throws VirtqueueException {
        int headerBytes = txHeaderBytes;
        long readable = chain.totalReadable();
        if (chain.writableCount() != 0 || readable < headerBytes + ETHERNET_HEADER_BYTES || readable > MAX_TX_CHAIN_BYTES) {
            add(txDropped, 1);
            return;
        }
        int frameBytes = (int) (readable - headerBytes);
        add(txPackets, 1);
        add(txBytes, frameBytes);
        VirtioQueue rx = txTarget;
        if (mode == VirtioNetDevice.Mode.LOOPBACK && (rx == null || !rx.isStarted() || !rx.isEnabled())) {
            // vhost-user "Ring states": a disabled receive ring gets no new packets.
            add(rxDropped, 1);
            return;
        }
        if (mode != VirtioNetDevice.Mode.LOOPBACK) {
            // A real back-end hands the bytes on: copy them out as DPDK's vhost PMD copies into an mbuf.
            chain.readReadable(headerBytes, frame, 0, frameBytes);
            sinkFingerprint.lazySet(sinkFingerprint.getPlain()
                    ^ frame.get(LE_U64, 0) ^ frame.get(LE_U64, frameBytes - 8));
            return;
        }
        try {
            if (gather(rx, (long) headerBytes + frameBytes, txMergeable)) {
                // Loopback copies once, from the transmit buffers straight into the receive buffers.
                deliver(rx, frameBytes, headerBytes, chain, headerBytes);
            } else {
                add(rxDropped, 1);
            }
        } catch (VirtqueueException e) {
            // The receive ring is broken (the library marked it and signals its error fd); the transmit
            // ring is not at fault and keeps running, its frames dropped.
            heldRxCount = 0;
            rxStaged = 0;
            add(rxDropped, 1);
        }
    }

    /**
     * Takes receive chains until they hold {@code needed} bytes (one chain without MRG_RXBUF) into
     * {@link #gathered}. When they do not suffice, they are kept for the next frame (or, without
     * MRG_RXBUF, the one too-small chain is returned empty).
     *
     * @return whether the gathered chains hold {@code needed} bytes
     */
    private boolean gather(VirtioQueue rx, long needed, boolean mergeable) throws VirtqueueException {
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
                if (c.readableCount() != 0 || c.totalWritable() < HEADER_BYTES) {
                    // Receive buffers are device-writable and hold at least a header (§5.1.6.3.1):
                    // return a malformed one empty instead of writing into it.
                    rx.complete(c, 0); // publishes the staged frames too
                    rxStaged = 0;
                    receiveUsed = true;
                    continue;
                }
            }
            gathered[count++] = c;
            room += c.totalWritable();
        }
        gatheredCount = count;
        if (room >= needed) {
            return true;
        }
        if (!mergeable && count == 1) {
            // One buffer per frame and this one is too small for it: give it back empty rather than
            // keep it forever (a driver without MRG_RXBUF posts buffers for the largest frame, §5.1.6.3.1).
            rx.complete(gathered[0], 0); // publishes the staged frames too
            rxStaged = 0;
            receiveUsed = true;
            return false;
        }
        // Not enough buffers yet: keep the ones taken for the next frame.
        for (int i = count - 1; i >= 0; i--) {
            heldRx[heldRxCount++] = gathered[i];
        }
        return false;
    }

    /** Publishes the frames staged on the receive ring. */
    private void publishReceived(VirtioQueue rx) throws VirtqueueException {
        rxStaged = 0;
        rx.publishCompletions();
    }

    /**
     * Puts a frame into the {@link #gather gathered} chains behind a zeroed header: from the transmit
     * chain {@code from} at {@code fromOffset} (loopback), or from {@link #frame} when {@code from} is null
     * (§5.1.6.4), with {@code num_buffers} set. The chains are published together so that the driver
     * never sees part of a frame.
     */
    private void deliver(VirtioQueue rx, int frameBytes, int headerBytes, DescriptorChain from, long fromOffset)
            throws VirtqueueException {
        int count = gatheredCount;
        rxHeader.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, 0L);
        rxHeader.set(ValueLayout.JAVA_INT_UNALIGNED, 8, 0);
        if (headerBytes == HEADER_BYTES) {
            rxHeader.set(LE_U16, NUM_BUFFERS_OFFSET, (short) count);
        }
        long frameOffset = 0;
        for (int i = 0; i < count; i++) {
            DescriptorChain c = gathered[i];
            long start = 0;
            if (i == 0) {
                c.writeWritable(0, rxHeader, 0, headerBytes);
                start = headerBytes;
            }
            long n = Math.min(c.totalWritable() - start, frameBytes - frameOffset);
            if (from == null) {
                c.writeWritable(start, frame, frameOffset, n);
            } else {
                from.copyReadableTo(fromOffset + frameOffset, c, start, n);
            }
            frameOffset += n;
            // Staged: published with the batch (never part of a frame: a frame's chains are staged together).
            rx.stageCompletion(c, start + n);
        }
        if (++rxStaged >= VirtioQueue.PUBLISH_BATCH) {
            publishReceived(rx);
        }
        receiveUsed = true;
        add(rxPackets, 1);
        add(rxBytes, frameBytes);
    }
}
