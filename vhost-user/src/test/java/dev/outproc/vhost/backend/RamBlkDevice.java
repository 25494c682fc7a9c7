package dev.outproc.vhost.backend;

import dev.outproc.core.virtio.VirtioQueue;
import dev.outproc.core.virtqueue.DescriptorChain;
import dev.outproc.core.virtqueue.DeviceQueue;
import dev.outproc.core.virtio.VirtioFeature;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

import static dev.outproc.core.memory.Layouts.LE_U32;
import static dev.outproc.core.memory.Layouts.LE_U64;

/**
 * A small test device that speaks the virtio-blk request format (16-byte header, data, status byte) over
 * a store held in a {@link MemorySegment} (RAM or a mapped file), so that {@code VirtioBlkDriver} and the
 * tests' own drivers can do real I/O against it. It records the callbacks the back-end makes, can hold
 * popped requests without completing them (to leave them in flight), and saves/loads its store as its
 * device state.
 */
final class RamBlkDevice implements VhostUserDevice {
    static final int T_IN = 0;
    static final int T_OUT = 1;
    static final int T_FLUSH = 4;
    static final int T_GET_ID = 8;
    static final int S_OK = 0;
    static final int S_IOERR = 1;
    static final int S_UNSUPP = 2;
    static final String ID = "ram-blk-test";


    private final MemorySegment store;
    private final int queues;
    private final long features;
    private final long extraProtocolFeatures;
    private final MemorySegment[] headers;
    private final MemorySegment statusBytes;
    private final MemorySegment idBytes;
    /** Events in order: "started 0", "stopped 0", "enabled 0 true", "reset", "status 15", "features 0x..". */
    final List<String> events = new CopyOnWriteArrayList<>();
    /** While true, popped requests are kept in flight instead of being served. */
    volatile boolean hold;
    /** Once this many requests were served, hold every later one (as if the device hung). */
    volatile long holdAfter = Long.MAX_VALUE;
    /** Requests popped while holding. */
    final List<DescriptorChain> held = new ArrayList<>();
    volatile long served;
    /**
     * Failures to throw once from a callback, by name: "process" (processQueue) or "started" (queueStarted).
     * A {@link StackOverflowError} armed for "process" is provoked for real, by unbounded recursion.
     */
    final Map<String, Throwable> failOnce = new ConcurrentHashMap<>();

    RamBlkDevice(MemorySegment store, int queues, long features, long extraProtocolFeatures) {
        this.store = store;
        this.queues = queues;
        this.features = features;
        this.extraProtocolFeatures = extraProtocolFeatures;
        Arena arena = Arena.ofAuto();
        this.headers = new MemorySegment[queues];
        for (int i = 0; i < queues; i++) {
            headers[i] = arena.allocate(16, 8);
        }
        this.statusBytes = arena.allocate(3);
        for (int i = 0; i < 3; i++) {
            statusBytes.set(ValueLayout.JAVA_BYTE, i, (byte) i);
        }
        this.idBytes = arena.allocate(20);
        MemorySegment.copy(ID.getBytes(java.nio.charset.StandardCharsets.US_ASCII), 0, idBytes, ValueLayout.JAVA_BYTE, 0, ID.length());
    }

    /** A RAM disk of {@code bytes} with the usual ring features. */
    static RamBlkDevice ram(long bytes, int queues) {
        return new RamBlkDevice(Arena.ofAuto().allocate(bytes, 4096), queues, defaultFeatures(), 0);
    }

    static long defaultFeatures() {
        return VirtioFeature.maskOf(VirtioFeature.VERSION_1, VirtioFeature.EVENT_IDX, VirtioFeature.INDIRECT_DESC,
                VirtioFeature.RING_PACKED);
    }

    MemorySegment store() {
        return store;
    }

    @Override
    public long features() {
        return features;
    }

    @Override
    public long protocolFeatures() {
        return extraProtocolFeatures;
    }

    @Override
    public int queueCount() {
        return queues;
    }

    @Override
    public int maxQueueSize() {
        return 256;
    }

    @Override
    public int configSize() {
        return 8;
    }

    @Override
    public void readConfig(int offset, MemorySegment destination) {
        MemorySegment config = Arena.ofAuto().allocate(8);
        config.set(LE_U64, 0, store.byteSize() / 512);
        MemorySegment.copy(config, offset, destination, 0, destination.byteSize());
    }

    @Override
    public void processQueue(VirtioQueue vring) throws IOException {
        throwIfArmed("process");
        DeviceQueue queue = vring.queue();
        // The loop of DeviceQueue's documentation: with EVENT_IDX the driver kicks only past avail_event,
        // which enableNotifications() publishes.
        queue.disableNotifications();
        long before = served;
        do {
            DescriptorChain chain;
            while ((chain = vring.pop()) != null) {
                if (hold || served >= holdAfter) {
                    synchronized (held) {
                        held.add(chain);
                    }
                    continue;
                }
                vring.complete(chain, handle(vring.index(), chain));
                served++;
            }
        } while (queue.enableNotifications());
        if (served != before) {
            // Only after completing something: the first needsNotification() of a fresh queue says yes
            // even when nothing was used (as Linux vhost does), a spurious call the tests would see.
            vring.notifyGuest();
        }
    }

    /** Serves the requests held so far (on the ring's worker; the test calls it through the ring's loop). */
    void releaseHeld(VirtioQueue vring) throws IOException {
        synchronized (held) {
            for (DescriptorChain c : held) {
                vring.complete(c, handle(vring.index(), c));
                served++;
            }
            held.clear();
        }
        vring.notifyGuest();
    }

    private long handle(int queue, DescriptorChain chain) throws IOException {
        if (chain.totalReadable() < 16 || chain.totalWritable() < 1) {
            return 0; // not a block request: consume it without writing anything
        }
        MemorySegment header = headers[queue];
        chain.readReadable(0, header, 0, 16);
        int type = header.get(LE_U32, 0);
        long sector = header.get(LE_U64, 8);
        long statusAt = chain.totalWritable() - 1;
        int status;
        switch (type) {
            case T_OUT -> {
                long length = chain.totalReadable() - 16;
                if (inStore(sector, length)) {
                    chain.readReadable(16, store, sector * 512, length);
                    status = S_OK;
                } else {
                    status = S_IOERR;
                }
            }
            case T_IN -> {
                long length = statusAt;
                if (inStore(sector, length)) {
                    chain.writeWritable(0, store, sector * 512, length);
                    status = S_OK;
                } else {
                    status = S_IOERR;
                }
            }
            case T_FLUSH -> status = S_OK;
            case T_GET_ID -> {
                long length = Math.min(20, statusAt);
                chain.writeWritable(0, idBytes, 0, length);
                status = S_OK;
            }
            default -> status = S_UNSUPP;
        }
        chain.writeWritable(statusAt, statusBytes, status, 1);
        // The status byte ends the writable bytes: the used length covers everything up to it.
        return statusAt + 1;
    }

    private boolean inStore(long sector, long length) {
        if (sector < 0 || sector > store.byteSize() / 512 || length % 512 != 0) {
            return false;
        }
        return length <= store.byteSize() - sector * 512;
    }

    @Override
    public void queueStarted(VirtioQueue vring) {
        throwIfArmed("started");
        events.add("started " + vring.index());
    }

    private void throwIfArmed(String callback) {
        Throwable t = failOnce.remove(callback);
        if (t instanceof StackOverflowError) {
            recurse(0);
        } else if (t instanceof Error e) {
            throw e;
        } else if (t instanceof RuntimeException e) {
            throw e;
        }
    }

    private static long recurse(long depth) {
        return recurse(depth + 1) + 1;
    }

    @Override
    public void queueStopped(VirtioQueue vring) {
        events.add("stopped " + vring.index());
    }

    @Override
    public void queueEnabled(VirtioQueue vring, boolean enabled) {
        events.add("enabled " + vring.index() + " " + enabled);
    }

    @Override
    public void featuresNegotiated(long negotiated) {
        events.add("features 0x" + Long.toHexString(negotiated));
    }

    @Override
    public void statusChanged(int status) {
        events.add("status " + status);
    }

    @Override
    public void reset() {
        events.add("reset");
        synchronized (held) {
            held.clear();
        }
    }

    @Override
    public boolean migratable() {
        return true;
    }

    @Override
    public void saveState(WritableByteChannel out) throws IOException {
        ByteBuffer header = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, store.byteSize());
        writeAll(out, header);
        writeAll(out, store.asByteBuffer());
    }

    @Override
    public void loadState(ReadableByteChannel in) throws IOException {
        ByteBuffer header = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readAll(in, header);
        long size = header.getLong(0);
        if (size != store.byteSize()) {
            throw new IOException("device state for a store of " + size + " bytes, this store has " + store.byteSize());
        }
        ByteBuffer body = ByteBuffer.allocate((int) size);
        readAll(in, body);
        if (in.read(ByteBuffer.allocate(1)) != -1) {
            throw new IOException("device state longer than " + (8 + size) + " bytes");
        }
        MemorySegment.copy(MemorySegment.ofArray(body.array()), 0, store, 0, size);
    }

    private static void writeAll(WritableByteChannel out, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            out.write(b);
        }
    }

    private static void readAll(ReadableByteChannel in, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (in.read(b) < 0) {
                throw new IOException("device state ended after " + b.position() + " of " + b.capacity() + " bytes");
            }
        }
    }
}
