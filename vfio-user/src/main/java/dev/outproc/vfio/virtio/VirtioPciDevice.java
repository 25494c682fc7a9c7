package dev.outproc.vfio.virtio;

import dev.outproc.core.event.EventLoop;
import dev.outproc.core.fd.Errno;
import dev.outproc.core.fd.NativeException;
import dev.outproc.core.memory.DirtyLog;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.core.virtio.VirtioDeviceType;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtio.VirtioStatus;
import dev.outproc.core.virtqueue.DeviceQueue;
import dev.outproc.core.virtqueue.PackedQueue;
import dev.outproc.core.virtqueue.QueueConfig;
import dev.outproc.core.virtqueue.QueueState;
import dev.outproc.core.virtqueue.SplitQueue;
import dev.outproc.core.virtqueue.VirtqueueException;
import dev.outproc.vfio.message.VfioUserProtocolException;
import dev.outproc.vfio.pci.BarHandler;
import dev.outproc.vfio.pci.PciConfigSpace;
import dev.outproc.vfio.pci.PciDevice;
import dev.outproc.vfio.server.DeviceContext;
import dev.outproc.vfio.server.IrqDescription;
import dev.outproc.vfio.server.MigrationHandler;
import dev.outproc.vfio.server.RegionDescription;
import dev.outproc.vfio.server.VfioUserDevice;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static java.lang.System.Logger.Level.DEBUG;
import static java.lang.System.Logger.Level.TRACE;
import static java.lang.System.Logger.Level.WARNING;

/**
 * Any transport-neutral {@link VirtioDevice} as a virtio 1.x modern PCI function served over vfio-user
 * (VIRTIO 1.2 §4.1 "Virtio Over PCI Bus"): what QEMU's {@code vfio-user-pci} shows a guest, and what the
 * guest's own virtio-pci driver drives.
 *
 * <h2 id="layout">Layout</h2>
 * <ul>
 * <li>Config space: vendor 0x1af4, device 0x1040 + device type, revision 1, subsystem 0x1af4 / the
 * device id, INTA#; capabilities MSI-X, then the virtio structures COMMON_CFG, ISR_CFG, DEVICE_CFG (when
 * the device has a configuration space), NOTIFY_CFG and the PCI_CFG access capability.</li>
 * <li>BAR1 (32-bit memory): the MSI-X table at 0 and the pending-bit array; one vector for configuration
 * changes and one per queue.</li>
 * <li>BAR4 (64-bit memory, 16 KiB): common configuration at 0x0000, ISR status at 0x1000, device
 * configuration at 0x2000, notifications at 0x3000 (queue {@code n} at {@code 0x3000 + 4n}:
 * {@code queue_notify_off = n}, {@code notify_off_multiplier = 4}).</li>
 * </ul>
 *
 * <h2 id="queues">Queues and notifications</h2>
 * The driver programs a queue through the common configuration and enables it; when it sets DRIVER_OK
 * the enabled queues start: core's split or packed device-side virtqueues over the client's DMA space
 * (guest memory the client mapped with fds; rings or buffers elsewhere break the queue). A doorbell
 * (REGION_WRITE to the notification area) signals the queue's eventfd and the device's worker thread runs
 * {@link VirtioDevice#processQueue}. Used-buffer notifications go out as MSI-X interrupts (the vector the
 * driver assigned; a masked vector sets its pending bit) or, with MSI-X disabled, as INTx with the ISR's
 * queue bit.
 *
 * <h2 id="reset">Reset</h2>
 * Writing 0 to {@code device_status} stops every queue (waiting until the worker has left the device),
 * returns every virtio register to its reset value and resets the device; a read of {@code device_status}
 * after the write returns 0. The PCI function (config space, BAR addresses, MSI-X) keeps its state, as on
 * a real virtio-pci device. VFIO_USER_DEVICE_RESET and the client's departure reset the PCI function too.
 *
 * <h2 id="migration">Migration</h2>
 * A device that migrates installs a {@link MigrationHandler} ({@link #setMigration}) that stores
 * {@link #exportState()} ({@link VirtioPciState}) next to its own state. {@link #pauseQueues()} stops the rings where
 * they stand and {@link #resumeQueues()} continues them there; {@link #importState} checks a loaded state against this
 * device and the client's DMA space before it takes any of it. While DMA logging runs, each ring logs what it writes
 * into client memory ({@link dev.outproc.vfio.server.DmaSpace#deviceWriteLog()}) from its next batch on.
 *
 * <h2 id="untrusted">Untrusted values</h2>
 * Every register value comes from the guest. A {@code queue_size} that is not a power of two (split
 * rings), zero or above the maximum is ignored (the register keeps its value); {@code queue_enable = 1}
 * with misaligned rings or rings outside the DMA space is ignored; a {@code queue_select} beyond the
 * queues selects nothing ({@code queue_size} reads 0, writes are dropped); read-only fields ignore writes;
 * a feature set the device did not offer, or one without VIRTIO_F_VERSION_1, does not reach FEATURES_OK.
 * A queue whose rings break at run time sets DEVICE_NEEDS_RESET and raises a configuration interrupt.
 *
 * {@snippet :
 * VirtioPciDevice pci = new VirtioPciDevice(new VirtioBlkDevice(store, 1, 256, "disk0"));
 * try (UnixListener listener = UnixListener.bind(socket)) {
 *     new VfioUserServer(pci, ServerOptions.DEFAULTS).serve(listener);
 * }
 * }
 */
public final class VirtioPciDevice implements VfioUserDevice, AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VirtioPciDevice.class.getName());

    /** PCI vendor id of virtio devices. */
    public static final int VENDOR_ID = 0x1af4;
    /** Modern virtio PCI device ids are this plus the device type (VIRTIO 1.2 §4.1.2.1). */
    public static final int DEVICE_ID_BASE = 0x1040;
    /** PCI revision id of a modern-only (non-transitional) device. */
    public static final int REVISION = 1;
    /** The BAR holding the MSI-X table and pending-bit array. */
    public static final int MSIX_BAR = 1;
    /** The BAR holding the virtio structures. */
    public static final int STRUCTURES_BAR = 4;
    /** Size of {@link #STRUCTURES_BAR}. */
    public static final long STRUCTURES_BAR_SIZE = 0x4000;
    /** Offset of the common configuration in {@link #STRUCTURES_BAR}. */
    public static final long COMMON_OFFSET = 0x0000;
    /** Offset of the ISR status in {@link #STRUCTURES_BAR}. */
    public static final long ISR_OFFSET = 0x1000;
    /** Offset of the device configuration in {@link #STRUCTURES_BAR}. */
    public static final long DEVICE_OFFSET = 0x2000;
    /** Offset of the notification area in {@link #STRUCTURES_BAR}. */
    public static final long NOTIFY_OFFSET = 0x3000;
    /** Bytes between two queues' notification addresses. */
    public static final int NOTIFY_OFF_MULTIPLIER = 4;
    /** ISR bit 0: a queue interrupt. */
    public static final int ISR_QUEUE = 1;
    /** ISR bit 1: a configuration change. */
    public static final int ISR_CONFIG = 2;
    /** Bytes of each structure's window in {@link #STRUCTURES_BAR}. */
    private static final int STRUCTURE_WINDOW = 0x1000;
    /** The feature bits this transport passes from the device to the driver (VIRTIO 1.2 §6). */
    private static final long TRANSPORT_FEATURES = 0x00FF_FFFFL
            | VirtioFeature.maskOf(VirtioFeature.INDIRECT_DESC, VirtioFeature.EVENT_IDX, VirtioFeature.VERSION_1,
                    VirtioFeature.RING_PACKED, VirtioFeature.IN_ORDER, VirtioFeature.ORDER_PLATFORM)
            | 0xFFFC_0000_0000_0000L;
    /** The negotiated features the virtqueue layer reads. */
    private static final long QUEUE_FEATURES = VirtioFeature.maskOf(VirtioFeature.EVENT_IDX, VirtioFeature.INDIRECT_DESC,
            VirtioFeature.IN_ORDER, VirtioFeature.RING_PACKED);

    private final VirtioDevice device;
    private final int queueCount;
    private final int maxQueueSize;
    private final long offeredFeatures;
    private final PciQueue[] queues;
    private final EventLoop worker;
    private final PciDevice pci;
    private final int pciCfgCapability;
    private final Object registers = new Object();
    private final AtomicInteger isr = new AtomicInteger();
    private final AtomicInteger configGeneration = new AtomicInteger();
    private final AtomicLong notifications = new AtomicLong();
    private volatile DeviceContext context;
    private volatile MigrationHandler migration;

    // Registers (under `registers`).
    private int deviceFeatureSelect;
    private int driverFeatureSelect;
    private long driverFeatures;
    private volatile int configMsixVector = CommonConfig.NO_VECTOR;
    private volatile int status;
    private int queueSelect;

    /**
     * Serves a device with the class code its type suggests (block: SCSI storage controller as QEMU
     * presents virtio-blk, net: Ethernet, else "other").
     *
     * @param device the device; {@link VirtioDevice#deviceType()} must name its type
     * @throws IOException when the worker or the notification eventfds cannot be created
     */
    public VirtioPciDevice(VirtioDevice device) throws IOException {
        this(device, defaultClassCode(device.deviceType()));
    }

    /**
     * Serves a device with an explicit PCI class code.
     *
     * @param device the device; {@link VirtioDevice#deviceType()} must name its type
     * @param classCode the 24-bit class code
     * @throws IOException when the worker or the notification eventfds cannot be created
     */
    public VirtioPciDevice(VirtioDevice device, int classCode) throws IOException {
        int type = device.deviceType();
        if (type <= 0 || type > 0x3F) {
            throw new IllegalArgumentException("a virtio-pci device needs a virtio device type in 1..63, deviceType=" + type);
        }
        int n = device.queueCount();
        if (n < 1 || n > STRUCTURE_WINDOW / NOTIFY_OFF_MULTIPLIER || n + 1 > 2048) {
            throw new IllegalArgumentException("queueCount must be 1.." + (STRUCTURE_WINDOW / NOTIFY_OFF_MULTIPLIER) + ", queueCount=" + n);
        }
        int max = device.maxQueueSize();
        if (max < 1 || max > QueueConfig.MAX_SIZE || Integer.bitCount(max) != 1) {
            throw new IllegalArgumentException("maxQueueSize must be a power of two up to " + QueueConfig.MAX_SIZE + ", maxQueueSize=" + max);
        }
        if (device.configSize() < 0 || device.configSize() > STRUCTURE_WINDOW) {
            throw new IllegalArgumentException("configSize out of range, configSize=" + device.configSize());
        }
        this.device = device;
        this.queueCount = n;
        this.maxQueueSize = max;
        this.offeredFeatures = (device.features() & TRANSPORT_FEATURES) | VirtioFeature.VERSION_1.mask();
        this.queues = new PciQueue[n];
        this.worker = EventLoop.start("virtio-pci-" + type);
        try {
            for (int i = 0; i < n; i++) {
                queues[i] = new PciQueue(this, i, max);
            }
        } catch (IOException e) {
            close();
            throw e;
        }
        int deviceId = DEVICE_ID_BASE + type;
        int vectors = n + 1;
        long tableBytes = 16L * vectors;
        long pbaOffset = Math.max(0x800, (tableBytes + 7) & ~7L);
        long pbaBytes = 8L * ((vectors + 63) / 64);
        long msixBarSize = Math.max(0x1000, Long.highestOneBit(pbaOffset + pbaBytes - 1) << 1);
        PciConfigSpace config = new PciConfigSpace(VENDOR_ID, deviceId, VENDOR_ID, deviceId, classCode, REVISION)
                .bar(MSIX_BAR, msixBarSize, PciConfigSpace.BarType.MEMORY32, false)
                .bar(STRUCTURES_BAR, STRUCTURES_BAR_SIZE, PciConfigSpace.BarType.MEMORY64, false)
                .interruptPin(1);
        PciDevice.Builder b = PciDevice.builder(config)
                .bar(STRUCTURES_BAR, new Structures())
                .msix(vectors, MSIX_BAR, 0, MSIX_BAR, pbaOffset)
                .msixTableInClient()
                .capability(VirtioPciCapability.structure(VirtioPciCapability.COMMON_CFG, STRUCTURES_BAR, COMMON_OFFSET, CommonConfig.LENGTH))
                .capability(VirtioPciCapability.structure(VirtioPciCapability.ISR_CFG, STRUCTURES_BAR, ISR_OFFSET, 1));
        if (device.configSize() > 0) {
            b.capability(VirtioPciCapability.structure(VirtioPciCapability.DEVICE_CFG, STRUCTURES_BAR, DEVICE_OFFSET, device.configSize()));
        }
        b.capability(new VirtioPciCapability(VirtioPciCapability.NOTIFY_CFG, STRUCTURES_BAR, NOTIFY_OFFSET,
                        (long) n * NOTIFY_OFF_MULTIPLIER, NOTIFY_OFF_MULTIPLIER))
                .capability(VirtioPciCapability.pciCfgAccess())
                .onReset(this::resetTransport);
        this.pci = b.build();
        java.util.List<Integer> caps = config.capabilityOffsets();
        this.pciCfgCapability = caps.get(caps.size() - 1);
    }

    private static int defaultClassCode(int type) {
        return switch (type) {
            case VirtioDeviceType.BLOCK -> 0x010000;
            case VirtioDeviceType.NET -> 0x020000;
            case VirtioDeviceType.CONSOLE -> 0x078000;
            default -> 0xFF0000;
        };
    }

    /** {@return the PCI function (config space, MSI-X state)} */
    public PciDevice pci() {
        return pci;
    }

    /** {@return the device served} */
    public VirtioDevice device() {
        return device;
    }

    /** {@return the features offered to the driver: the device's that this transport carries, plus VERSION_1} */
    public long offeredFeatures() {
        return offeredFeatures;
    }

    /** {@return the device status the driver set (0 after a reset)} */
    public int status() {
        return status;
    }

    /** {@return how many doorbell writes reached the notification area (REGION_WRITE) since creation} */
    public long notifications() {
        return notifications.get();
    }

    /** {@return the offset of the PCI_CFG access capability in config space} */
    public int pciCfgCapabilityOffset() {
        return pciCfgCapability;
    }

    // ---- VfioUserDevice: the PCI function, with the PCI_CFG access window in config space ----

    @Override
    public int regionCount() {
        return pci.regionCount();
    }

    @Override
    public RegionDescription region(int index) {
        return pci.region(index);
    }

    @Override
    public void regionRead(int index, long offset, MemorySegment destination) throws VfioUserProtocolException {
        if (index == PciDevice.CONFIG_REGION && touchesPciCfgData(offset, destination.byteSize())) {
            pciCfgAccess(false);
        }
        pci.regionRead(index, offset, destination);
    }

    @Override
    public void regionWrite(int index, long offset, MemorySegment source) throws VfioUserProtocolException {
        pci.regionWrite(index, offset, source);
        if (index == PciDevice.CONFIG_REGION && touchesPciCfgData(offset, source.byteSize())) {
            pciCfgAccess(true);
        }
    }

    private boolean touchesPciCfgData(long offset, long length) {
        long data = pciCfgCapability + VirtioPciCapability.EXTRA_OFFSET;
        return offset < data + 4 && offset + length > data;
    }

    /**
     * Performs the access the PCI_CFG capability selects (VIRTIO 1.2 §4.1.4.9.1): {@code length} bytes
     * (1, 2 or 4, aligned) at {@code offset} of BAR {@code bar}, to or from {@code pci_cfg_data}. Anything
     * else is ignored, as the device may.
     */
    private void pciCfgAccess(boolean write) throws VfioUserProtocolException {
        PciConfigSpace config = pci.config();
        int cap = pciCfgCapability;
        int bar = config.read16(cap + VirtioPciCapability.BAR_OFFSET) & 0xFF;
        long offset = config.read32(cap + VirtioPciCapability.OFFSET_OFFSET) & 0xFFFF_FFFFL;
        long length = config.read32(cap + VirtioPciCapability.LENGTH_OFFSET) & 0xFFFF_FFFFL;
        if (bar != STRUCTURES_BAR || (length != 1 && length != 2 && length != 4) || offset % length != 0
                || offset + length > STRUCTURES_BAR_SIZE) {
            LOG.log(DEBUG, "PCI_CFG access ignored: bar={0} offset=0x{1} length={2}", bar, Long.toHexString(offset), length);
            return;
        }
        int data = cap + VirtioPciCapability.EXTRA_OFFSET;
        MemorySegment bytes = MemorySegment.ofArray(new byte[(int) length]);
        if (write) {
            config.read(data, bytes);
            pci.regionWrite(STRUCTURES_BAR, offset, bytes);
        } else {
            pci.regionRead(STRUCTURES_BAR, offset, bytes);
            for (int i = 0; i < length; i++) {
                config.setByDevice(data + i, bytes.get(ValueLayout.JAVA_BYTE, i));
            }
        }
    }

    @Override
    public int irqIndexCount() {
        return pci.irqIndexCount();
    }

    @Override
    public IrqDescription irq(int index) {
        return pci.irq(index);
    }

    @Override
    public void reset() {
        pci.reset(); // runs resetTransport after the config space and MSI-X are back at power-on values
    }

    @Override
    public void attach(DeviceContext context) {
        this.context = context;
        pci.attach(context);
    }

    @Override
    public void detach() {
        // The client's memory goes next: the worker must be out of it first.
        stopQueues();
        pci.detach();
        this.context = null;
    }

    @Override
    public MigrationHandler migration() {
        return migration;
    }

    /**
     * Makes the device migratable: the handler saves and loads the device's state around this transport's
     * ({@link #exportState()}, {@link #importState}, {@link #pauseQueues()}, {@link #resumeQueues()}).
     *
     * @param handler the migration callbacks, or {@code null} for none
     */
    public void setMigration(MigrationHandler handler) {
        this.migration = handler;
    }

    // ---- migration: see VirtioPciState ----

    /** Stops every running queue where it stands (migration STOP); {@link #resumeQueues()} continues them there. */
    public void pauseQueues() {
        stopQueues();
    }

    /** Starts again the enabled queues of a running driver (migration RUNNING), at their recorded positions. */
    public void resumeQueues() {
        synchronized (registers) {
            if ((status & VirtioStatus.DRIVER_OK) == 0 || (status & VirtioStatus.DEVICE_NEEDS_RESET) != 0) {
                return;
            }
            for (PciQueue q : queues) {
                if (q.enabled) {
                    startQueue(q);
                }
            }
        }
    }

    /**
     * {@return the transport's state} Call it with the queues paused ({@link #pauseQueues()}), or the ring
     * positions are those of the last stop.
     */
    public VirtioPciState exportState() {
        synchronized (registers) {
            java.util.List<VirtioPciState.Queue> list = new java.util.ArrayList<>();
            for (PciQueue q : queues) {
                QueueState s = q.stopped;
                list.add(new VirtioPciState.Queue(q.index(), q.size, q.enabled, q.msixVector, q.descAddr, q.driverAddr,
                        q.deviceAddr, s != null, s == null ? 0 : s.nextAvail(), s == null ? 0 : s.nextUsed(),
                        s != null && s.availWrapCounter(), s != null && s.usedWrapCounter()));
            }
            int cap = msixCapabilityOffset();
            byte[] table = new byte[16 * (queueCount + 1)];
            try {
                pci.regionRead(MSIX_BAR, 0, MemorySegment.ofArray(table));
            } catch (VfioUserProtocolException e) {
                throw new IllegalStateException("MSI-X table unreadable: " + e.getMessage(), e);
            }
            return new VirtioPciState(deviceFeatureSelect, driverFeatureSelect, driverFeatures, status, queueSelect,
                    configMsixVector, configGeneration.get() & 0xFF, isr.get(), pci.config().read16(cap + 2) & 0xFFFF,
                    table, list, pci.exportMsixPending());
        }
    }

    /**
     * Checks a saved transport state against this device and the client's DMA memory, then takes it: every
     * register, every queue's ring position (the rings start there on {@link #resumeQueues()}), the ISR, the
     * configuration generation and the MSI-X table, control and pending bits (none when the state carries none).
     * Nothing changes when it throws.
     *
     * @param s the state
     * @throws IOException naming the offending value: another queue count, a queue size this device does not
     *         offer, a vector beyond the table, features it does not offer, a status without FEATURES_OK under
     *         DRIVER_OK, ring positions out of range, misaligned rings or rings outside the DMA space, a pending-bit
     *         array of another length or with a bit beyond the table
     */
    public void importState(VirtioPciState s) throws IOException {
        stopQueues();
        synchronized (registers) {
            checkState(s);
            deviceFeatureSelect = s.deviceFeatureSelect();
            driverFeatureSelect = s.driverFeatureSelect();
            driverFeatures = s.driverFeatures();
            queueSelect = s.queueSelect();
            configMsixVector = s.configMsixVector();
            configGeneration.set(s.configGeneration());
            isr.set(s.isr());
            boolean packed = (s.driverFeatures() & VirtioFeature.RING_PACKED.mask()) != 0;
            boolean eventIdx = (s.driverFeatures() & VirtioFeature.EVENT_IDX.mask()) != 0;
            for (VirtioPciState.Queue r : s.queues()) {
                PciQueue q = queues[r.index()];
                q.size = r.size();
                q.enabled = r.enabled();
                q.msixVector = r.msixVector();
                q.descAddr = r.descAddr();
                q.driverAddr = r.driverAddr();
                q.deviceAddr = r.deviceAddr();
                q.broken = false;
                q.stopped = r.running() ? new QueueState(r.size(), r.descAddr(), r.driverAddr(), r.deviceAddr(), r.nextAvail(),
                        r.nextUsed(), packed && r.availWrap(), packed && r.usedWrap(), eventIdx) : null;
            }
            try {
                pci.regionWrite(MSIX_BAR, 0, MemorySegment.ofArray(s.msixTable()));
                MemorySegment control = MemorySegment.ofArray(new byte[] {(byte) s.msixControl(), (byte) (s.msixControl() >>> 8)});
                pci.regionWrite(PciDevice.CONFIG_REGION, msixCapabilityOffset() + 2, control);
                pci.importMsixPending(s.msixPending()); // checked above; after the table, whose writes deliver nothing pending
            } catch (VfioUserProtocolException e) {
                throw new IOException("MSI-X state not accepted: " + e.getMessage(), e);
            }
            status = s.deviceStatus();
            if ((status & VirtioStatus.FEATURES_OK) != 0) {
                device.featuresNegotiated(driverFeatures);
            }
        }
        device.statusChanged(s.deviceStatus());
    }

    private void checkState(VirtioPciState s) throws IOException {
        if (s.queues().size() != queueCount) {
            throw new IOException("virtio-pci state of " + s.queues().size() + " queues for a device of " + queueCount);
        }
        if ((s.driverFeatures() & ~offeredFeatures) != 0) {
            throw new IOException("virtio-pci state with features not offered here: driver=0x" + Long.toHexString(s.driverFeatures())
                    + " offered=0x" + Long.toHexString(offeredFeatures));
        }
        int st = s.deviceStatus();
        if ((st & VirtioStatus.DRIVER_OK) != 0 && (st & VirtioStatus.FEATURES_OK) == 0) {
            throw new IOException("virtio-pci state with DRIVER_OK but not FEATURES_OK, status=0x" + Integer.toHexString(st));
        }
        if (vector(s.configMsixVector()) != s.configMsixVector()) {
            throw new IOException("config_msix_vector beyond the MSI-X table of " + (queueCount + 1) + ": " + s.configMsixVector());
        }
        if (s.msixTable().length != 16 * (queueCount + 1)) {
            throw new IOException("MSI-X table of " + s.msixTable().length + " bytes for " + (queueCount + 1) + " vectors");
        }
        checkPending(s.msixPending());
        boolean packed = (s.driverFeatures() & VirtioFeature.RING_PACKED.mask()) != 0;
        GuestMemory memory = context == null ? GuestMemory.empty() : context.dma().guestMemory();
        for (int i = 0; i < queueCount; i++) {
            VirtioPciState.Queue r = s.queues().get(i);
            String q = "queue " + i + ": ";
            if (r.index() != i) {
                throw new IOException(q + "record of queue " + r.index() + " out of order");
            }
            if (r.size() < 1 || r.size() > maxQueueSize || (!packed && Integer.bitCount(r.size()) != 1)) {
                throw new IOException(q + "queue_size " + r.size() + " not offered (maximum " + maxQueueSize + (packed ? ")" : ", a power of two)"));
            }
            if (vector(r.msixVector()) != r.msixVector()) {
                throw new IOException(q + "queue_msix_vector " + r.msixVector() + " beyond the MSI-X table");
            }
            if (r.running() && (!r.enabled() || (st & VirtioStatus.DRIVER_OK) == 0)) {
                throw new IOException(q + "running without queue_enable and DRIVER_OK, status=0x" + Integer.toHexString(st));
            }
            if (packed && r.running() && (r.nextAvail() >= r.size() || r.nextUsed() >= r.size())) {
                throw new IOException(q + "packed ring slots beyond the ring: next_avail=" + r.nextAvail() + " next_used="
                        + r.nextUsed() + " size=" + r.size());
            }
            if (!packed && r.running() && ((r.nextAvail() - r.nextUsed()) & 0xFFFF) > r.size()) {
                throw new IOException(q + "more requests in flight than the ring holds: next_avail=" + r.nextAvail()
                        + " next_used=" + r.nextUsed() + " size=" + r.size());
            }
            if (r.enabled() && !ringsFit(packed, r.size(), r.descAddr(), r.driverAddr(), r.deviceAddr(), memory)) {
                throw new IOException(q + "rings misaligned or outside the DMA space: desc=0x" + Long.toHexString(r.descAddr())
                        + " driver=0x" + Long.toHexString(r.driverAddr()) + " device=0x" + Long.toHexString(r.deviceAddr()));
            }
        }
    }

    /** The pending-bit array: empty, or this function's length with no bit beyond the table's vectors. */
    private void checkPending(byte[] pending) throws IOException {
        int length = pci.exportMsixPending().length;
        if (pending.length != 0 && pending.length != length) {
            throw new IOException("MSI-X pending-bit array of " + pending.length + " bytes, this function has " + length);
        }
        for (int v = queueCount + 1; v < 8 * pending.length; v++) {
            if ((pending[v >>> 3] & (1 << (v & 7))) != 0) {
                throw new IOException("MSI-X pending bit " + v + " set beyond the table's " + (queueCount + 1) + " vectors");
            }
        }
    }

    private int msixCapabilityOffset() {
        return pci.config().capabilityOffsets().get(0);
    }

    /** Stops the queues and the worker thread; the device cannot be served afterwards. */
    @Override
    public void close() {
        if (worker != null && worker.isRunning()) {
            stopQueues();
            worker.close();
        }
        for (PciQueue q : queues) {
            if (q != null) {
                q.kick.close();
            }
        }
    }

    // ---- reset and queue life cycle ----

    private void resetTransport() {
        if (pci == null) {
            return; // the PCI function's first reset, during construction: everything is at its reset value
        }
        stopQueues();
        synchronized (registers) {
            deviceFeatureSelect = 0;
            driverFeatureSelect = 0;
            driverFeatures = 0;
            configMsixVector = CommonConfig.NO_VECTOR;
            status = 0;
            queueSelect = 0;
            isr.set(0);
            for (PciQueue q : queues) {
                q.resetRegisters(maxQueueSize);
                q.broken = false;
                q.features = 0;
            }
        }
        device.reset();
    }

    /** Stops every started queue, waiting until the worker is out of the device. */
    private void stopQueues() {
        if (!worker.isRunning()) {
            return;
        }
        worker.awaitOnLoop(() -> {
            for (PciQueue q : queues) {
                if (q.registration != null) {
                    q.registration.cancel();
                    q.registration = null;
                }
                if (q.started) {
                    q.started = false;
                    device.queueStopped(q);
                    q.stopped = q.queue.exportState(); // where a migration resumes it
                }
                q.queue = null;
                q.dirtyLog = null;
                q.memory = GuestMemory.empty();
            }
        });
    }

    /** Starts an enabled queue after DRIVER_OK (register lock held). */
    private void startQueue(PciQueue q) {
        DeviceContext c = context;
        if (c == null || q.started) {
            return;
        }
        long features = driverFeatures;
        GuestMemory memory = c.dma().guestMemory();
        QueueConfig config = new QueueConfig("virtio-pci queue " + q.index(), q.size, q.descAddr, q.driverAddr, q.deviceAddr,
                features & QUEUE_FEATURES);
        DeviceQueue ring = (features & VirtioFeature.RING_PACKED.mask()) != 0 ? new PackedQueue(config.name()) : new SplitQueue(config.name());
        try {
            if (q.stopped != null) {
                ring.importState(config, q.stopped, memory);
            } else {
                ring.configure(config, memory);
            }
        } catch (VirtqueueException e) {
            needsReset("queue " + q.index() + " cannot start: " + e.getMessage());
            return;
        }
        EventLoop.Registration registration;
        try {
            registration = worker.add(q.kick.owner(), events -> {
                q.kick.drain();
                run(q);
            });
        } catch (NativeException e) {
            needsReset("queue " + q.index() + " cannot start: " + e.getMessage());
            return;
        }
        worker.awaitOnLoop(() -> {
            q.registration = registration;
            q.queue = ring;
            q.memory = memory;
            q.features = features;
            q.broken = false;
            q.started = true;
            device.queueStarted(q);
            run(q); // buffers made available before the start are not lost
        });
        LOG.log(DEBUG, "queue {0} started: {1} ring of {2}", q.index(), (features & VirtioFeature.RING_PACKED.mask()) != 0 ? "packed" : "split", q.size);
    }

    /** Runs the device on a queue; on the worker. */
    private void run(PciQueue q) {
        if (!q.started || q.broken) {
            return;
        }
        DeviceContext c = context;
        if (c == null) {
            return;
        }
        GuestMemory current = c.dma().guestMemory();
        try {
            if (current != q.memory) {
                // The client mapped or unmapped DMA windows: the ring picks up the new snapshot between batches.
                q.queue.setMemory(current);
                q.memory = current;
            }
            DirtyLog log = c.dma().deviceWriteLog();
            if (log != q.dirtyLog) {
                // DMA logging started or stopped: the ring logs what it writes from this batch on (the used ring
                // of a split ring, the descriptor ring of a packed one, and the buffers the device fills).
                boolean packed = (q.features & VirtioFeature.RING_PACKED.mask()) != 0;
                q.queue.setDirtyLog(log, packed ? q.queue.config().descAddr() : q.queue.config().deviceAddr());
                q.dirtyLog = log;
            }
            device.processQueue(q);
        } catch (IOException | RuntimeException e) {
            q.broken = true;
            needsReset("queue " + q.index() + " is broken: " + e.getMessage());
        }
    }

    /** Sets DEVICE_NEEDS_RESET and tells the driver with a configuration interrupt (VIRTIO 1.2 §2.1.1). */
    private void needsReset(String why) {
        LOG.log(WARNING, why + "; device needs reset");
        int s = status;
        status = s | VirtioStatus.DEVICE_NEEDS_RESET;
        if ((s & (VirtioStatus.FEATURES_OK | VirtioStatus.DRIVER_OK)) != 0) {
            interruptConfig();
        }
    }

    // ---- interrupts ----

    /** A used-buffer notification for a queue: its MSI-X vector, or INTx with the ISR queue bit. */
    void interruptQueue(PciQueue q) throws IOException {
        raise(q.msixVector, ISR_QUEUE);
    }

    /** A configuration-change notification. */
    private void interruptConfig() {
        configGeneration.incrementAndGet();
        try {
            raise(configMsixVector, ISR_CONFIG);
        } catch (IOException e) {
            LOG.log(WARNING, "configuration interrupt failed: " + e.getMessage());
        }
    }

    /**
     * Tells the driver that the device's configuration changed (VIRTIO 1.2 §4.1.5.3): the generation
     * counter moves and the configuration vector (or INTx with the ISR's configuration bit) fires.
     */
    public void configChanged() {
        interruptConfig();
    }

    private void raise(int vector, int isrBit) throws IOException {
        if (LOG.isLoggable(TRACE)) {
            LOG.log(TRACE, "interrupt: vector " + vector + ", ISR bit " + isrBit + (pci.msixEnabled() ? ", MSI-X" : ", INTx"));
        }
        if (pci.msixEnabled()) {
            if (vector != CommonConfig.NO_VECTOR) {
                pci.raise(vector);
            }
            return;
        }
        isr.getAndUpdate(v -> v | isrBit);
        pci.raise(0);
    }

    // ---- the structures BAR ----

    /** BAR4: common configuration, ISR, device configuration, notifications. */
    private final class Structures implements BarHandler {
        @Override
        public void read(long offset, MemorySegment destination) {
            long length = destination.byteSize();
            int area = (int) (offset / STRUCTURE_WINDOW);
            int at = (int) (offset % STRUCTURE_WINDOW);
            if (at + length > STRUCTURE_WINDOW) {
                destination.fill((byte) 0); // across two structures: nothing real lives there
                return;
            }
            switch (area) {
                case 0 -> readCommon(at, destination);
                case 1 -> {
                    destination.fill((byte) 0);
                    if (at == 0) {
                        // Reading the ISR clears it (VIRTIO 1.2 §4.1.4.5).
                        destination.set(ValueLayout.JAVA_BYTE, 0, (byte) isr.getAndSet(0));
                    }
                }
                case 2 -> readDeviceConfig(at, destination);
                default -> destination.fill((byte) 0);
            }
        }

        @Override
        public void write(long offset, MemorySegment source) throws VfioUserProtocolException {
            long length = source.byteSize();
            int area = (int) (offset / STRUCTURE_WINDOW);
            int at = (int) (offset % STRUCTURE_WINDOW);
            if (at + length > STRUCTURE_WINDOW) {
                return;
            }
            switch (area) {
                case 0 -> writeCommon(at, source);
                case 2 -> writeDeviceConfig(at, source);
                case 3 -> doorbell(at);
                default -> {
                    // the ISR is read-only
                }
            }
        }
    }

    private void readDeviceConfig(int at, MemorySegment destination) {
        int size = device.configSize();
        destination.fill((byte) 0);
        long n = Math.min(destination.byteSize(), Math.max(0, size - at));
        if (n > 0) {
            device.readConfig(at, destination.asSlice(0, n));
        }
    }

    private void writeDeviceConfig(int at, MemorySegment source) {
        if (at + source.byteSize() > device.configSize()) {
            LOG.log(DEBUG, "device configuration write beyond its {0} bytes ignored, offset={1}", device.configSize(), at);
            return;
        }
        try {
            device.writeConfig(at, source);
        } catch (IOException e) {
            LOG.log(DEBUG, "device configuration write refused: " + e.getMessage());
        }
    }

    /** A doorbell: queue {@code at / 4} (VIRTIO 1.2 §4.1.4.4; the written value is the queue index). */
    private void doorbell(int at) throws VfioUserProtocolException {
        notifications.incrementAndGet();
        if (LOG.isLoggable(TRACE)) {
            LOG.log(TRACE, "doorbell at 0x" + Integer.toHexString(at));
        }
        int index = at / NOTIFY_OFF_MULTIPLIER;
        if (at % NOTIFY_OFF_MULTIPLIER != 0 || index >= queueCount) {
            return;
        }
        PciQueue q = queues[index];
        if (!q.started) {
            return; // served when the queue starts
        }
        try {
            q.kick.signal();
        } catch (NativeException e) {
            throw new VfioUserProtocolException(Errno.EIO, "queue " + index + ": kick eventfd failed: " + e.getMessage());
        }
    }

    // ---- common configuration ----

    private PciQueue selected() {
        return queueSelect < queueCount ? queues[queueSelect] : null;
    }

    private void readCommon(int at, MemorySegment destination) {
        if (LOG.isLoggable(TRACE)) {
            LOG.log(TRACE, "common read 0x" + Integer.toHexString(at) + "/" + destination.byteSize() + " = 0x"
                    + Long.toHexString(commonField(Math.max(0, fieldStart(at)))));
        }
        for (long i = 0; i < destination.byteSize(); ) {
            int offset = (int) (at + i);
            int field = fieldStart(offset);
            if (field < 0) {
                destination.set(ValueLayout.JAVA_BYTE, i, (byte) 0);
                i++;
                continue;
            }
            long value = commonField(field);
            int size = CommonConfig.fieldSize(field);
            for (int b = offset - field; b < size && i < destination.byteSize(); b++, i++) {
                destination.set(ValueLayout.JAVA_BYTE, i, (byte) (value >>> (8 * b)));
            }
        }
    }

    /** {@return the start of the field holding {@code offset}, or -1 beyond the structure} */
    private static int fieldStart(int offset) {
        if (offset >= CommonConfig.LENGTH) {
            return -1;
        }
        for (int start = offset; start >= 0; start--) {
            int size = CommonConfig.fieldSize(start);
            if (size > 0) {
                return start + size > offset ? start : -1;
            }
        }
        return -1;
    }

    private long commonField(int field) {
        synchronized (registers) {
            PciQueue q = selected();
            return switch (field) {
                case CommonConfig.DEVICE_FEATURE_SELECT -> deviceFeatureSelect & 0xFFFF_FFFFL;
                case CommonConfig.DEVICE_FEATURE -> deviceFeatureSelect == 0 ? offeredFeatures & 0xFFFF_FFFFL
                        : deviceFeatureSelect == 1 ? offeredFeatures >>> 32 : 0;
                case CommonConfig.DRIVER_FEATURE_SELECT -> driverFeatureSelect & 0xFFFF_FFFFL;
                case CommonConfig.DRIVER_FEATURE -> driverFeatureSelect == 0 ? driverFeatures & 0xFFFF_FFFFL
                        : driverFeatureSelect == 1 ? driverFeatures >>> 32 : 0;
                case CommonConfig.CONFIG_MSIX_VECTOR -> configMsixVector;
                case CommonConfig.NUM_QUEUES -> queueCount;
                case CommonConfig.DEVICE_STATUS -> status;
                case CommonConfig.CONFIG_GENERATION -> configGeneration.get() & 0xFF;
                case CommonConfig.QUEUE_SELECT -> queueSelect;
                case CommonConfig.QUEUE_SIZE -> q == null ? 0 : q.size;
                case CommonConfig.QUEUE_MSIX_VECTOR -> q == null ? CommonConfig.NO_VECTOR : q.msixVector;
                case CommonConfig.QUEUE_ENABLE -> q != null && q.enabled ? 1 : 0;
                case CommonConfig.QUEUE_NOTIFY_OFF, CommonConfig.QUEUE_NOTIFY_DATA -> q == null ? 0 : q.index();
                case CommonConfig.QUEUE_DESC -> q == null ? 0 : q.descAddr;
                case CommonConfig.QUEUE_DRIVER -> q == null ? 0 : q.driverAddr;
                case CommonConfig.QUEUE_DEVICE -> q == null ? 0 : q.deviceAddr;
                default -> 0; // queue_reset: VIRTIO_F_RING_RESET is not offered
            };
        }
    }

    private void writeCommon(int at, MemorySegment source) {
        int length = (int) source.byteSize();
        int field = fieldStart(at);
        if (field < 0 || at + length > field + CommonConfig.fieldSize(field)) {
            LOG.log(DEBUG, "common configuration write of {0} bytes at 0x{1} does not fit one field; ignored", length, Integer.toHexString(at));
            return;
        }
        long written = 0;
        for (int i = 0; i < length; i++) {
            written |= (source.get(ValueLayout.JAVA_BYTE, i) & 0xFFL) << (8 * i);
        }
        int shift = 8 * (at - field);
        long mask = (length == 8 ? -1L : (1L << (8 * length)) - 1) << shift;
        long value = (commonField(field) & ~mask) | ((written << shift) & mask);
        if (LOG.isLoggable(TRACE)) {
            LOG.log(TRACE, "common write 0x" + Integer.toHexString(at) + "/" + length + " = 0x" + Long.toHexString(written));
        }
        if (field == CommonConfig.DEVICE_STATUS) {
            writeStatus((int) value & 0xFF);
            return;
        }
        synchronized (registers) {
            writeField(field, value);
        }
    }

    private void writeField(int field, long value) {
        PciQueue q = selected();
        boolean running = (status & VirtioStatus.DRIVER_OK) != 0;
        switch (field) {
            case CommonConfig.DEVICE_FEATURE_SELECT -> deviceFeatureSelect = (int) value;
            case CommonConfig.DRIVER_FEATURE_SELECT -> driverFeatureSelect = (int) value;
            case CommonConfig.DRIVER_FEATURE -> {
                if ((status & VirtioStatus.FEATURES_OK) != 0) {
                    LOG.log(DEBUG, "driver_feature written after FEATURES_OK; ignored");
                } else if (driverFeatureSelect == 0) {
                    driverFeatures = (driverFeatures & 0xFFFF_FFFF_0000_0000L) | (value & 0xFFFF_FFFFL);
                } else if (driverFeatureSelect == 1) {
                    driverFeatures = (driverFeatures & 0xFFFF_FFFFL) | (value << 32);
                }
            }
            case CommonConfig.CONFIG_MSIX_VECTOR -> configMsixVector = vector((int) value);
            case CommonConfig.QUEUE_SELECT -> queueSelect = (int) value & 0xFFFF;
            case CommonConfig.QUEUE_SIZE -> {
                if (q == null || q.enabled) {
                    return;
                }
                int size = (int) value & 0xFFFF;
                boolean packed = (driverFeatures & VirtioFeature.RING_PACKED.mask()) != 0;
                if (size < 1 || size > maxQueueSize || (!packed && Integer.bitCount(size) != 1)) {
                    LOG.log(DEBUG, "queue {0}: queue_size {1} refused (maximum {2}{3}); kept {4}", q.index(), size, maxQueueSize,
                            packed ? "" : ", a power of two", q.size);
                    return;
                }
                q.size = size;
            }
            case CommonConfig.QUEUE_MSIX_VECTOR -> {
                if (q != null) {
                    q.msixVector = vector((int) value);
                }
            }
            case CommonConfig.QUEUE_ENABLE -> {
                if (q != null && value == 1 && !q.enabled && ringsAcceptable(q)) {
                    q.enabled = true;
                    if (running) {
                        startQueue(q);
                    }
                }
            }
            case CommonConfig.QUEUE_DESC, CommonConfig.QUEUE_DRIVER, CommonConfig.QUEUE_DEVICE -> {
                if (q == null || q.enabled) {
                    return;
                }
                if (field == CommonConfig.QUEUE_DESC) {
                    q.descAddr = value;
                } else if (field == CommonConfig.QUEUE_DRIVER) {
                    q.driverAddr = value;
                } else {
                    q.deviceAddr = value;
                }
            }
            default -> LOG.log(DEBUG, "write to read-only common configuration field 0x{0} ignored", Integer.toHexString(field));
        }
    }

    /** {@return the vector, or NO_VECTOR when the MSI-X table has no such entry (VIRTIO 1.2 §4.1.5.1.2)} */
    private int vector(int value) {
        int v = value & 0xFFFF;
        return v <= queueCount ? v : CommonConfig.NO_VECTOR;
    }

    /** {@return whether a queue's rings are aligned and lie in the client's DMA memory} */
    private boolean ringsAcceptable(PciQueue q) {
        boolean packed = (driverFeatures & VirtioFeature.RING_PACKED.mask()) != 0;
        DeviceContext c = context;
        GuestMemory memory = c == null ? GuestMemory.empty() : c.dma().guestMemory();
        if (!ringsFit(packed, q.size, q.descAddr, q.driverAddr, q.deviceAddr, memory)) {
            LOG.log(DEBUG, "queue {0}: rings misaligned or outside the DMA memory desc=0x{1} driver=0x{2} device=0x{3}; not enabled",
                    q.index(), Long.toHexString(q.descAddr), Long.toHexString(q.driverAddr), Long.toHexString(q.deviceAddr));
            return false;
        }
        return true;
    }

    /** {@return whether rings of this size at these addresses are aligned (VIRTIO 1.2 §2.7, §2.8) and lie in memory} */
    private static boolean ringsFit(boolean packed, int size, long descAddr, long driverAddr, long deviceAddr, GuestMemory memory) {
        long descBytes = 16L * size;
        long driverBytes = packed ? 4 : 6 + 2L * size;
        long deviceBytes = packed ? 4 : 6 + 8L * size;
        long driverAlign = packed ? 4 : 2;
        if ((descAddr & 15) != 0 || (driverAddr & (driverAlign - 1)) != 0 || (deviceAddr & 3) != 0) {
            return false;
        }
        return memory.contains(descAddr, descBytes) && memory.contains(driverAddr, driverBytes)
                && memory.contains(deviceAddr, deviceBytes);
    }

    /** device_status (VIRTIO 1.2 §2.1, §3.1.1, §4.1.4.3.1). */
    private void writeStatus(int value) {
        if (value == 0) {
            // A virtio reset, not a PCI function reset: the config space (BARs, command, MSI-X) stays as the guest set it.
            resetTransport();
            LOG.log(DEBUG, "device reset by the driver");
            return;
        }
        boolean start;
        int next;
        synchronized (registers) {
            int old = status;
            next = value | (old & VirtioStatus.DEVICE_NEEDS_RESET);
            if ((next & VirtioStatus.FEATURES_OK) != 0 && (old & VirtioStatus.FEATURES_OK) == 0) {
                long unsupported = driverFeatures & ~offeredFeatures;
                if (unsupported != 0 || (driverFeatures & VirtioFeature.VERSION_1.mask()) == 0) {
                    LOG.log(DEBUG, "FEATURES_OK refused: driver features 0x{0}, offered 0x{1}", Long.toHexString(driverFeatures),
                            Long.toHexString(offeredFeatures));
                    next &= ~VirtioStatus.FEATURES_OK;
                } else {
                    device.featuresNegotiated(driverFeatures);
                }
            }
            if ((next & VirtioStatus.DRIVER_OK) != 0 && (next & VirtioStatus.FEATURES_OK) == 0) {
                next &= ~VirtioStatus.DRIVER_OK; // no DRIVER_OK without accepted features
            }
            start = (next & VirtioStatus.DRIVER_OK) != 0 && (old & VirtioStatus.DRIVER_OK) == 0;
            status = next;
            if (start) {
                for (PciQueue q : queues) {
                    if (q.enabled) {
                        startQueue(q);
                    }
                }
            }
        }
        device.statusChanged(next);
    }

}
