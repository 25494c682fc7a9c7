package dev.outproc.examples.net;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtqueue.DriverQueue;
import dev.outproc.core.virtqueue.GpaAllocator;
import dev.outproc.core.virtqueue.SplitDriverQueue;
import dev.outproc.vhost.frontend.FrontendQueue;
import dev.outproc.vhost.frontend.VhostUserFrontend;
import dev.outproc.vhost.message.ProtocolFeature;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.concurrent.locks.LockSupport;

/**
 * A virtio-net driver for tests: our front-end with a split receive ring (queue 0) and transmit ring
 * (queue 1) in memfd guest memory, buffers at fixed addresses per descriptor id.
 */
final class NetTestDriver implements AutoCloseable {
    static final int QUEUE_SIZE = 256;
    private static final long GUEST_BASE = 0x1_0000_0000L;
    private static final long USER_BASE = 0x7e00_0000_0000L;
    /** Per-descriptor buffer area: large enough for the longest hostile transmit chain. */
    static final int SLOT_BYTES = 72 * 1024;
    private static final long TIMEOUT_NANOS = 10_000_000_000L;

    final VhostUserFrontend frontend;
    final long acked;
    private final GuestRegion region;
    final GuestMemory memory;
    final FrontendQueue rx;
    final FrontendQueue tx;
    private final long rxSlots;
    private final long txSlots;
    /** The gpa of the first buffer of each posted receive chain, by its id. */
    private final long[] rxGpa = new long[QUEUE_SIZE];
    private int rxSlotNext;

    private NetTestDriver(VhostUserFrontend frontend, long acked, GuestRegion region, GuestMemory memory,
                          FrontendQueue rx, FrontendQueue tx, long rxSlots, long txSlots) {
        this.frontend = frontend;
        this.acked = acked;
        this.region = region;
        this.memory = memory;
        this.rx = rx;
        this.tx = tx;
        this.rxSlots = rxSlots;
        this.txSlots = txSlots;
    }

    static NetTestDriver start(Path socket, long wantedFeatures) throws IOException {
        VhostUserFrontend frontend = VhostUserFrontend.connect(socket);
        try {
            long acked = frontend.negotiate(wantedFeatures,
                    ProtocolFeature.maskOf(ProtocolFeature.MQ, ProtocolFeature.REPLY_ACK, ProtocolFeature.CONFIG));
            // Rings first, then one slot per descriptor for each ring.
            long bytes = (2L << 20) + 2L * QUEUE_SIZE * SLOT_BYTES;
            bytes = (bytes + (2 << 20) - 1) / (2 << 20) * (2 << 20);
            GuestRegion region = GuestRegion.allocate(GUEST_BASE, bytes, USER_BASE);
            GuestMemory memory = GuestMemory.of(java.util.List.of(region));
            frontend.setMemTable(memory);
            GpaAllocator allocator = new GpaAllocator(GUEST_BASE, GUEST_BASE + bytes);
            long queueFeatures = acked & VirtioFeature.maskOf(VirtioFeature.EVENT_IDX, VirtioFeature.INDIRECT_DESC);
            SplitDriverQueue rxq = SplitDriverQueue.allocate("net-rx", memory, allocator, QUEUE_SIZE, queueFeatures, 0);
            SplitDriverQueue txq = SplitDriverQueue.allocate("net-tx", memory, allocator, QUEUE_SIZE, queueFeatures, 0);
            long rxSlots = allocator.allocate((long) QUEUE_SIZE * SLOT_BYTES, 4096);
            long txSlots = allocator.allocate((long) QUEUE_SIZE * SLOT_BYTES, 4096);
            FrontendQueue rx = frontend.startQueue(0, rxq, memory);
            FrontendQueue tx = frontend.startQueue(1, txq, memory);
            return new NetTestDriver(frontend, acked, region, memory, rx, tx, rxSlots, txSlots);
        } catch (IOException | RuntimeException e) {
            frontend.close();
            throw e;
        }
    }

    /** Posts {@code count} receive chains of one writable buffer of {@code bytes} each. */
    void postRx(int count, int bytes) throws IOException {
        DriverQueue q = rx.queue();
        for (int i = 0; i < count; i++) {
            long gpa = rxSlots + (long) (rxSlotNext++ % QUEUE_SIZE) * SLOT_BYTES;
            q.add(gpa, bytes, true);
            int id = q.post(false);
            if (id < 0) {
                throw new IllegalStateException("receive ring full");
            }
            rxGpa[id] = gpa;
        }
        rx.publishAndKick();
    }

    /** Posts a receive chain whose only buffer is device-readable (a malformed receive chain). */
    void postReadOnlyRx() throws IOException {
        DriverQueue q = rx.queue();
        long gpa = rxSlots + (long) (rxSlotNext++ % QUEUE_SIZE) * SLOT_BYTES;
        q.add(gpa, 2048, false);
        rxGpa[q.post(false)] = gpa;
        rx.publishAndKick();
    }

    /**
     * Sends {@code packet} (header and frame) on the transmit ring, split into {@code parts} buffers,
     * plus {@code writableBytes} of device-writable buffer when non-zero, and waits for it to be used.
     *
     * @return the used length the device reported
     */
    long send(byte[] packet, int parts, int writableBytes) throws IOException {
        DriverQueue q = tx.queue();
        long gpa = txSlots;
        MemorySegment.copy(packet, 0, memory.slice(gpa, Math.max(1, packet.length)), ValueLayout.JAVA_BYTE, 0, packet.length);
        int at = 0;
        for (int p = 0; p < parts; p++) {
            int n = p + 1 == parts ? packet.length - at : packet.length / parts;
            q.add(gpa + at, n, false);
            at += n;
        }
        if (writableBytes > 0) {
            q.add(gpa + SLOT_BYTES, writableBytes, true);
        }
        if (q.post(false) < 0) {
            throw new IllegalStateException("transmit ring full");
        }
        tx.publishAndKick();
        long used = awaitUsed(q);
        return DriverQueue.usedLength(used);
    }

    /** A received chain: its first buffer's gpa and the length the device wrote. */
    record Used(long gpa, long length) {
    }

    /** {@return the next used receive chain, or null when none comes within {@code timeoutMillis}} */
    Used pollRx(long timeoutMillis) throws IOException {
        long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
        DriverQueue q = rx.queue();
        while (true) {
            long used = q.pollUsed();
            if (used != DriverQueue.NONE) {
                return new Used(rxGpa[DriverQueue.usedId(used)], DriverQueue.usedLength(used));
            }
            if (System.nanoTime() - deadline > 0) {
                return null;
            }
            LockSupport.parkNanos(50_000);
        }
    }

    byte[] read(long gpa, long length) throws IOException {
        return memory.slice(gpa, length).toArray(ValueLayout.JAVA_BYTE);
    }

    private static long awaitUsed(DriverQueue q) throws IOException {
        long deadline = System.nanoTime() + TIMEOUT_NANOS;
        while (true) {
            long used = q.pollUsed();
            if (used != DriverQueue.NONE) {
                return used;
            }
            if (System.nanoTime() - deadline > 0) {
                throw new IOException("the device did not use the transmit chain within 10 s");
            }
            LockSupport.parkNanos(20_000);
        }
    }

    @Override
    public void close() {
        rx.close();
        tx.close();
        frontend.close();
        region.close();
    }
}
