package dev.outproc.examples.blk;

import dev.outproc.core.virtqueue.DescriptorChain;
import dev.outproc.core.virtqueue.QueueState;
import dev.outproc.migration.handshake.DeviceDescriptor;
import dev.outproc.migration.handshake.HandshakeAgreement;
import dev.outproc.migration.handshake.HandshakeEndpoint;
import dev.outproc.migration.model.FormatVersion;
import dev.outproc.migration.model.Registry;
import dev.outproc.migration.model.StateSchemaReader;
import dev.outproc.core.virtqueue.VirtqueueException;
import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.core.virtio.VirtioDeviceType;
import dev.outproc.core.virtio.VirtioQueue;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtio.blk.VirtioBlk;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

import static dev.outproc.core.memory.Layouts.LE_U16;
import static dev.outproc.core.memory.Layouts.LE_U32;
import static dev.outproc.core.memory.Layouts.LE_U64;

/**
 * A virtio-blk device (VIRTIO 1.2 §5.2): IN, OUT, FLUSH, GET_ID, DISCARD and WRITE_ZEROES on a
 * {@link BlockStore}, several queues, read-only mode, its configuration space and its migratable state.
 * Data moves between guest memory and the store without an intermediate copy. Requests the guest gets
 * wrong are answered with {@link VirtioBlk#S_IOERR} or {@link VirtioBlk#S_UNSUPP}; a chain too short to
 * hold a status byte is returned with length 0.
 *
 * <p>Transport-neutral: it knows {@link VirtioDevice} and {@link VirtioQueue} only, so vhost-user
 * serves it ({@code vhost-user-blk}: the back-end adds the CONFIG protocol feature for its configuration
 * space) and a virtio-pci transport can serve the same class.
 */
public class VirtioBlkDevice implements VirtioDevice {
    private static final long MAX_ZEROES_SECTORS = 1L << 22; // 2 GiB per request
    /** Bytes 0, 1, 2: the status values, copied from here so that answering allocates nothing. */
    private static final MemorySegment STATUS_BYTES = statusBytes();

    private final BlockStore store;
    private final int queues;
    private final int queueSize;
    private final byte[] serial;
    private final Arena arena = Arena.ofShared();
    /** One request handler per queue, each with its own header scratch, made once: serving allocates nothing. */
    private final VirtioQueue.ChainHandler[] handlers;
    private volatile boolean writeback = true;
    private volatile long driverFeatures;
    private volatile int deviceStatus;
    private final BlkState.Queue[] stoppedQueues;
    /** The agreement the next save uses (this device is the source), and the one the next load uses (destination). */
    private volatile HandshakeAgreement saveAgreement;
    private volatile HandshakeAgreement loadAgreement;
    private volatile BlkState loaded;

    /** Counters, for the demo and the probe. */
    public final AtomicLong reads = new AtomicLong();
    /** Requests written. */
    public final AtomicLong writes = new AtomicLong();
    /** Bytes moved in either direction. */
    public final AtomicLong bytes = new AtomicLong();
    /** Requests answered with an error status. */
    public final AtomicLong errors = new AtomicLong();
    private final AtomicLong bytesReadTotal = new AtomicLong();
    private final AtomicLong bytesWrittenTotal = new AtomicLong();

    /** The device model this device implements (in the migration registry). */
    public static final String MODEL_ID = "virtio-spec.org/pci/virtio-blk";
    /** The state format class it reads and writes. */
    public static final String FORMAT_CLASS = "virtio-spec.org/pci/virtio-blk/state";

    /**
     * Creates the device.
     *
     * @param store the storage
     * @param queues number of request queues (1..64)
     * @param queueSize largest queue size (a power of two)
     * @param serial the id GET_ID returns (up to 20 bytes of it)
     */
    public VirtioBlkDevice(BlockStore store, int queues, int queueSize, String serial) {
        if (queues < 1 || queues > 64) {
            throw new IllegalArgumentException("queues must be 1..64, queues=" + queues);
        }
        this.store = store;
        this.queues = queues;
        this.queueSize = queueSize;
        this.serial = serial.getBytes(StandardCharsets.US_ASCII);
        this.handlers = new VirtioQueue.ChainHandler[queues];
        this.stoppedQueues = new BlkState.Queue[queues];
        for (int i = 0; i < queues; i++) {
            MemorySegment header = arena.allocate(64, 8);
            handlers[i] = chain -> handle(chain, header);
        }
    }

    private static MemorySegment statusBytes() {
        MemorySegment s = Arena.global().allocate(3);
        for (int i = 0; i < 3; i++) {
            s.set(ValueLayout.JAVA_BYTE, i, (byte) i);
        }
        return s.asReadOnly();
    }

    /**
     * Describes this device for the migration handshake: model, implementation, format class, the
     * guest-visible parameters and the format versions it reads and writes.
     *
     * @param implementationId who implemented it (file-backed and memory-backed back-ends differ here)
     * @param backing the host-side store, not guest-visible
     * @return the descriptor
     */
    public DeviceDescriptor descriptor(String implementationId, String backing) {
        return descriptor(implementationId, backing, List.of(1, 2));
    }

    /**
     * Describes this device for the migration handshake with the format versions its transport reads and writes
     * (the virtio-pci transport of vfio-user carries its own state in version 3).
     *
     * @param implementationId who implemented it
     * @param backing the host-side store, not guest-visible
     * @param formatVersions the versions read and written
     * @return the descriptor
     */
    public DeviceDescriptor descriptor(String implementationId, String backing, List<Integer> formatVersions) {
        Map<String, String> p = new LinkedHashMap<>();
        p.put("capacity", Long.toString(store.sizeBytes() / VirtioBlk.SECTOR_SIZE));
        p.put("blk_size", Integer.toString(VirtioBlk.SECTOR_SIZE));
        p.put("num_queues", Integer.toString(queues));
        p.put("queue_size", Integer.toString(queueSize));
        p.put("seg_max", Integer.toString(queueSize - 2));
        p.put("read_only", Boolean.toString(store.readOnly()));
        p.put("features", "0x" + Long.toHexString(features()));
        p.put("backing", backing);
        return new DeviceDescriptor(MODEL_ID, implementationId, FORMAT_CLASS, p, formatVersions, formatVersions);
    }

    /**
     * Sets the result of the migration handshake; the next state save or load uses it.
     *
     * @param agreement the agreement, or {@code null} to forget it
     */
    public void migrationAgreed(HandshakeAgreement agreement) {
        this.saveAgreement = agreement;
        this.loadAgreement = agreement;
    }

    /**
     * Takes the agreement of a handshake served on this device's migration endpoint (integration.md §7): as source
     * it governs the next save, as destination the next load. Each agreement serves one transfer.
     *
     * @param agreed the role and agreement
     */
    public void migrationAgreed(HandshakeEndpoint.Agreed agreed) {
        if (agreed.source()) {
            saveAgreement = agreed.agreement();
        } else {
            loadAgreement = agreed.agreement();
        }
    }

    /** {@return the state last loaded, or {@code null}} */
    public BlkState loadedState() {
        return loaded;
    }

    /** {@return the state as it would be saved now} */
    public BlkState currentState() {
        // One record per queue (the format's queue-count check): a queue the driver never started is recorded disabled.
        List<BlkState.Queue> q = new ArrayList<>();
        for (int i = 0; i < stoppedQueues.length; i++) {
            BlkState.Queue s = stoppedQueues[i];
            q.add(s != null ? s : new BlkState.Queue(i, queueSize, false, 0, 0));
        }
        return new BlkState(store.sizeBytes() / VirtioBlk.SECTOR_SIZE, VirtioBlk.SECTOR_SIZE, queues, store.readOnly(),
                features(), driverFeatures, deviceStatus, 0, writeback, q, reads.get() + writes.get(),
                bytesReadTotal.get(), bytesWrittenTotal.get());
    }

    @Override
    public void featuresNegotiated(long features) {
        driverFeatures = features;
    }

    @Override
    public void statusChanged(int status) {
        deviceStatus = status;
    }

    /**
     * Forgets what the driver negotiated: the features and the status a saved state would carry (a reset device has
     * neither). The ring positions of stopped queues and the statistics stay.
     */
    @Override
    public void reset() {
        driverFeatures = 0;
        deviceStatus = 0;
    }

    @Override
    public void queueStopped(VirtioQueue queue) {
        QueueState s = queue.queue() == null ? null : queue.queue().exportState();
        if (s != null) {
            stoppedQueues[queue.index()] = new BlkState.Queue(queue.index(), s.size(), queue.isEnabled(), s.nextAvail(), s.nextUsed());
        }
    }

    @Override
    public boolean migratable() {
        return true;
    }

    @Override
    public void saveState(WritableByteChannel out) throws IOException {
        HandshakeAgreement a = saveAgreement;
        if (a == null) {
            throw new IOException("no migration handshake was agreed for this device as source; nothing is saved");
        }
        saveAgreement = null;
        currentState().write(out, a);
    }

    @Override
    public void loadState(ReadableByteChannel in) throws IOException {
        HandshakeAgreement a = loadAgreement;
        if (a == null) {
            throw new IOException("no migration handshake was agreed for this device as destination; nothing is loaded");
        }
        loadAgreement = null;
        restore(BlkState.read(in, a), a.formatVersion());
    }

    /**
     * Checks a verified state against this device and the format version's declarative checks, then takes it.
     *
     * @param s the state
     * @param formatVersion the format version it was read in
     * @throws IOException when it is the state of another device (capacity, queues, read-only, block size) or fails
     *         a check of the registry
     */
    public void restore(BlkState s, int formatVersion) throws IOException {
        // The format version's declarative checks (registry-format.md §3.5): num_queues against the queue records.
        StateSchemaReader.check(schema(formatVersion), Map.of(
                "device", Map.<String, Object>of("num_queues", (long) s.numQueues()),
                "virtqueues", Map.<String, Object>of("queues", s.queues())));
        // The guest must see the same disk: refuse a state of another geometry before using any of it.
        if (s.capacitySectors() != store.sizeBytes() / VirtioBlk.SECTOR_SIZE || s.numQueues() != queues
                || s.readOnly() != store.readOnly() || s.blkSize() != VirtioBlk.SECTOR_SIZE) {
            throw new IOException("state of another device: capacity=" + s.capacitySectors() + " queues=" + s.numQueues()
                    + " readOnly=" + s.readOnly() + " blkSize=" + s.blkSize());
        }
        writeback = s.writeback();
        driverFeatures = s.driverFeatures();
        deviceStatus = s.deviceStatus();
        loaded = s;
    }

    /** The shipped registry's schema of a version of this device's format class, for the load-time checks. */
    private static FormatVersion schema(int version) throws IOException {
        return Registry.builtin().model(MODEL_ID).flatMap(m -> m.formatClass(FORMAT_CLASS)).flatMap(f -> f.version(version))
                .orElseThrow(() -> new IOException("the registry defines no version " + version + " of " + FORMAT_CLASS));
    }

    /** {@return the storage} */
    public BlockStore store() {
        return store;
    }

    @Override
    public long features() {
        long f = VirtioFeature.maskOf(VirtioFeature.VERSION_1, VirtioFeature.EVENT_IDX, VirtioFeature.INDIRECT_DESC,
                VirtioFeature.RING_PACKED, VirtioFeature.NOTIFY_ON_EMPTY)
                | bit(VirtioBlk.F_SEG_MAX) | bit(VirtioBlk.F_BLK_SIZE) | bit(VirtioBlk.F_FLUSH)
                | bit(VirtioBlk.F_DISCARD) | bit(VirtioBlk.F_WRITE_ZEROES) | bit(VirtioBlk.F_TOPOLOGY);
        if (queues > 1) {
            f |= bit(VirtioBlk.F_MQ);
        }
        if (store.readOnly()) {
            f |= bit(VirtioBlk.F_RO);
        }
        return f;
    }

    private static long bit(int n) {
        return 1L << n;
    }

    @Override
    public int deviceType() {
        return VirtioDeviceType.BLOCK;
    }

    @Override
    public int queueCount() {
        return queues;
    }

    @Override
    public int maxQueueSize() {
        return queueSize;
    }

    @Override
    public int configSize() {
        return VirtioBlk.CONFIG_SIZE;
    }

    /** {@return the configuration space as the guest reads it} */
    public MemorySegment config() {
        MemorySegment c = Arena.ofAuto().allocate(VirtioBlk.CONFIG_SIZE);
        c.set(LE_U64, 0, store.sizeBytes() / VirtioBlk.SECTOR_SIZE);
        c.set(LE_U32, 8, 0);
        c.set(LE_U32, 12, queueSize - 2);
        c.set(LE_U32, 20, VirtioBlk.SECTOR_SIZE);
        c.set(ValueLayout.JAVA_BYTE, 24, (byte) 0);
        c.set(LE_U16, 26, (short) 1);
        c.set(LE_U32, 28, 0);
        c.set(ValueLayout.JAVA_BYTE, 32, (byte) (writeback ? 1 : 0));
        c.set(LE_U16, 34, (short) queues);
        c.set(LE_U32, 36, (int) MAX_ZEROES_SECTORS);
        c.set(LE_U32, 40, 1);
        c.set(LE_U32, 44, 1);
        c.set(LE_U32, 48, (int) MAX_ZEROES_SECTORS);
        c.set(LE_U32, 52, 1);
        c.set(ValueLayout.JAVA_BYTE, 56, (byte) 0);
        return c;
    }

    @Override
    public void readConfig(int offset, MemorySegment destination) {
        MemorySegment.copy(config(), offset, destination, 0, destination.byteSize());
    }

    @Override
    public void writeConfig(int offset, MemorySegment source) throws IOException {
        // Only the writeback byte is writable (VIRTIO_BLK_F_CONFIG_WCE), and it is not offered.
        throw new IOException("virtio-blk configuration space is read-only here, offset=" + offset);
    }

    // @start region="process"
    @Override
    public void processQueue(VirtioQueue queue) throws IOException {
        // handlers[i] = chain -> handle(chain, header): made once per queue in the constructor,
        // so the loop allocates nothing.
        queue.drain(handlers[queue.index()]);
    }
    // @end

    /** Serves one request; returns the bytes written into the chain. */
    private long handle(DescriptorChain chain, MemorySegment header) throws VirtqueueException {
        if (chain.totalWritable() < 1) {
            errors.incrementAndGet();
            return 0; // nowhere to put a status
        }
        long statusOffset = chain.totalWritable() - 1;
        if (chain.totalReadable() < VirtioBlk.HEADER_SIZE) {
            return status(chain, statusOffset, VirtioBlk.S_IOERR, 0);
        }
        chain.readReadable(0, header, 0, VirtioBlk.HEADER_SIZE);
        int type = header.get(LE_U32, VirtioBlk.HEADER_TYPE_OFFSET);
        long sector = header.get(LE_U64, VirtioBlk.HEADER_SECTOR_OFFSET);
        try {
            return switch (type) {
                case VirtioBlk.T_IN -> read(chain, sector, statusOffset);
                case VirtioBlk.T_OUT -> write(chain, sector, statusOffset);
                case VirtioBlk.T_FLUSH -> {
                    store.flush();
                    yield status(chain, statusOffset, VirtioBlk.S_OK, 0);
                }
                case VirtioBlk.T_GET_ID -> {
                    int n = (int) Math.min(VirtioBlk.ID_BYTES, statusOffset);
                    byte[] id = new byte[n];
                    System.arraycopy(serial, 0, id, 0, Math.min(n, serial.length));
                    chain.writeWritable(0, MemorySegment.ofArray(id), 0, n);
                    yield status(chain, statusOffset, VirtioBlk.S_OK, n);
                }
                case VirtioBlk.T_DISCARD, VirtioBlk.T_WRITE_ZEROES -> zeroes(chain, type, header, statusOffset);
                default -> status(chain, statusOffset, VirtioBlk.S_UNSUPP, 0);
            };
        } catch (IOException e) {
            return status(chain, statusOffset, VirtioBlk.S_IOERR, 0);
        }
    }

    private long status(DescriptorChain chain, long statusOffset, int status, long dataBytes) throws VirtqueueException {
        if (status != VirtioBlk.S_OK) {
            errors.incrementAndGet();
        }
        chain.writeWritable(statusOffset, STATUS_BYTES, status, 1);
        return dataBytes + 1;
    }

    private boolean inRange(long sector, long bytesLength) {
        if (sector < 0 || sector > store.sizeBytes() / VirtioBlk.SECTOR_SIZE) {
            return false;
        }
        long offset = sector * VirtioBlk.SECTOR_SIZE;
        return bytesLength >= 0 && bytesLength <= store.sizeBytes() - offset;
    }

    private long read(DescriptorChain chain, long sector, long dataBytes) throws IOException {
        if (dataBytes % VirtioBlk.SECTOR_SIZE != 0 || !inRange(sector, dataBytes)) {
            return status(chain, dataBytes, VirtioBlk.S_IOERR, 0);
        }
        long position = sector * VirtioBlk.SECTOR_SIZE;
        long left = dataBytes;
        // @start region="read"
        for (int i = chain.readableCount(); i < chain.bufferCount() && left > 0; i++) {
            long n = Math.min(chain.length(i), left);
            store.read(position, chain.regionSegment(i).asSlice(chain.regionOffset(i), n));
            position += n;
            left -= n;
        }
        // @end
        reads.incrementAndGet();
        bytes.addAndGet(dataBytes);
        bytesReadTotal.addAndGet(dataBytes);
        return status(chain, dataBytes, VirtioBlk.S_OK, dataBytes);
    }

    private long write(DescriptorChain chain, long sector, long statusOffset) throws IOException {
        long dataBytes = chain.totalReadable() - VirtioBlk.HEADER_SIZE;
        if (store.readOnly() || dataBytes % VirtioBlk.SECTOR_SIZE != 0 || !inRange(sector, dataBytes)) {
            return status(chain, statusOffset, VirtioBlk.S_IOERR, 0);
        }
        long position = sector * VirtioBlk.SECTOR_SIZE;
        long skip = VirtioBlk.HEADER_SIZE;
        for (int i = 0; i < chain.readableCount(); i++) {
            long n = chain.length(i);
            if (skip >= n) {
                skip -= n;
                continue;
            }
            long part = n - skip;
            store.write(position, chain.regionSegment(i).asSlice(chain.regionOffset(i) + skip, part));
            position += part;
            skip = 0;
        }
        writes.incrementAndGet();
        bytes.addAndGet(dataBytes);
        bytesWrittenTotal.addAndGet(dataBytes);
        return status(chain, statusOffset, VirtioBlk.S_OK, 0);
    }

    private long zeroes(DescriptorChain chain, int type, MemorySegment segment, long statusOffset) throws IOException {
        long payload = chain.totalReadable() - VirtioBlk.HEADER_SIZE;
        if (store.readOnly() || payload <= 0 || payload % VirtioBlk.SEGMENT_SIZE != 0) {
            return status(chain, statusOffset, VirtioBlk.S_IOERR, 0);
        }
        long count = payload / VirtioBlk.SEGMENT_SIZE;
        if (count > 1) {
            return status(chain, statusOffset, VirtioBlk.S_UNSUPP, 0); // max_*_seg is 1
        }
        // The segment goes into the scratch behind the header.
        long at = VirtioBlk.HEADER_SIZE;
        chain.readReadable(VirtioBlk.HEADER_SIZE, segment, at, VirtioBlk.SEGMENT_SIZE);
        long sector = segment.get(LE_U64, at + VirtioBlk.SEGMENT_SECTOR_OFFSET);
        long sectors = Integer.toUnsignedLong(segment.get(LE_U32, at + VirtioBlk.SEGMENT_NUM_SECTORS_OFFSET));
        int flags = segment.get(LE_U32, at + VirtioBlk.SEGMENT_FLAGS_OFFSET);
        boolean unmap = (flags & 1) != 0;
        if ((flags & ~1) != 0 || (type == VirtioBlk.T_DISCARD && unmap) || sectors > MAX_ZEROES_SECTORS) {
            return status(chain, statusOffset, VirtioBlk.S_UNSUPP, 0);
        }
        if (!inRange(sector, sectors * VirtioBlk.SECTOR_SIZE)) {
            return status(chain, statusOffset, VirtioBlk.S_IOERR, 0);
        }
        store.writeZeroes(sector * VirtioBlk.SECTOR_SIZE, sectors * VirtioBlk.SECTOR_SIZE);
        return status(chain, statusOffset, VirtioBlk.S_OK, 0);
    }
}
