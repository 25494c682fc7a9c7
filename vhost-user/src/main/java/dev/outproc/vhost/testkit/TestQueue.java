package dev.outproc.vhost.testkit;

import dev.outproc.core.virtqueue.DriverQueue;
import dev.outproc.vhost.frontend.FrontendQueue;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * One ring of a {@link DeviceTestBench}, driven the way a guest driver drives it: post a chain (a
 * device-readable part with given bytes, a device-writable part of given size), publish and kick, wait
 * for the device to use it, read what it wrote.
 *
 * <p>Each chain gets the buffer slot of its descriptor id, so up to the queue size may be in flight.
 */
public final class TestQueue {
    private static final long TIMEOUT_MILLIS = 10_000;

    private final DeviceTestBench bench;
    private final FrontendQueue ring;
    private final long buffers;
    private final int bufferBytes;
    /** By chain id: where its writable part starts, or -1 when not in flight. */
    private final long[] writableGpa;
    private final int[] writableLength;
    private int nextSlot;

    TestQueue(DeviceTestBench bench, FrontendQueue ring, int size, long buffers, int bufferBytes) {
        this.bench = bench;
        this.ring = ring;
        this.buffers = buffers;
        this.bufferBytes = bufferBytes;
        this.writableGpa = new long[size];
        this.writableLength = new int[size];
        java.util.Arrays.fill(writableGpa, -1);
    }

    /** A used chain: its id, the length the device reported, and the bytes of its writable part up to that length. */
    public record Used(int id, long writtenBytes, byte[] written) {
    }

    /** {@return the started ring (its driver-side queue, kick and call eventfds)} */
    public FrontendQueue ring() {
        return ring;
    }

    /** {@return the driver-side queue, for chains of other shapes} */
    public DriverQueue driver() {
        return ring.queue();
    }

    /**
     * Posts one chain (not yet published): {@code readable} as one device-readable buffer (none when
     * empty), then one device-writable buffer of {@code writableBytes} (none when 0).
     *
     * @param readable what the device reads
     * @param writableBytes room for the device to write
     * @return the chain's id
     * @throws IOException when the ring is full
     */
    public int post(byte[] readable, int writableBytes) throws IOException {
        if (readable.length + (long) writableBytes > bufferBytes || writableBytes < 0) {
            throw new IllegalArgumentException("a chain holds at most " + bufferBytes + " bytes, readable="
                    + readable.length + " writable=" + writableBytes);
        }
        if (readable.length == 0 && writableBytes == 0) {
            throw new IllegalArgumentException("a chain needs at least one buffer");
        }
        long gpa = buffers + (long) (nextSlot++ % writableGpa.length) * bufferBytes;
        DriverQueue queue = ring.queue();
        if (readable.length > 0) {
            MemorySegment.copy(readable, 0, bench.slice(gpa, readable.length), ValueLayout.JAVA_BYTE, 0, readable.length);
            queue.add(gpa, readable.length, false);
        }
        long writable = gpa + readable.length;
        if (writableBytes > 0) {
            bench.slice(writable, writableBytes).fill((byte) 0);
            queue.add(writable, writableBytes, true);
        }
        int id = queue.post(false);
        if (id < 0) {
            queue.clearStaged();
            throw new IOException("ring " + ring.index() + " is full: reap completions first");
        }
        writableGpa[id] = writable;
        writableLength[id] = writableBytes;
        return id;
    }

    /**
     * Publishes the posted chains and kicks the device when its suppression rules ask for it.
     *
     * @throws IOException when the kick fails
     */
    public void kick() throws IOException {
        ring.publishAndKick();
    }

    /**
     * Waits up to 10 s for the next used chain.
     *
     * @return it, with the bytes the device wrote
     * @throws IOException when none comes within 10 s, or the device reports what a driver must refuse
     */
    public Used await() throws IOException {
        return await(TIMEOUT_MILLIS);
    }

    /**
     * Waits for the next used chain.
     *
     * @param timeoutMillis how long at most
     * @return it, with the bytes the device wrote
     * @throws IOException when none comes in time, or the device reports what a driver must refuse
     */
    public Used await(long timeoutMillis) throws IOException {
        long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
        DriverQueue queue = ring.queue();
        while (true) {
            long used = queue.pollUsed();
            if (used != DriverQueue.NONE) {
                int id = DriverQueue.usedId(used);
                long length = DriverQueue.usedLength(used);
                long gpa = writableGpa[id];
                writableGpa[id] = -1;
                int shown = (int) Math.min(length, writableLength[id]);
                return new Used(id, length, bench.read(gpa, shown));
            }
            long waitMillis = (deadline - System.nanoTime()) / 1_000_000L;
            if (waitMillis <= 0) {
                throw nothingUsed(timeoutMillis, null);
            }
            if (!queue.enableUsedNotifications()) {
                try {
                    ring.awaitCall(waitMillis + 1); // past our deadline, so its timeout is ours
                } catch (IOException e) {
                    if (System.nanoTime() - deadline < 0) {
                        throw e; // the eventfd failed, not the wait
                    }
                    throw nothingUsed(timeoutMillis, e);
                }
            }
        }
    }

    private IOException nothingUsed(long timeoutMillis, IOException cause) {
        return new IOException("ring " + ring.index() + ": nothing used within " + timeoutMillis + " ms", cause);
    }

    /**
     * {@link #kick()} then {@link #await()}: one request, one answer.
     *
     * @return the used chain
     * @throws IOException as those do
     */
    public Used kickAndAwait() throws IOException {
        kick();
        return await();
    }
}
