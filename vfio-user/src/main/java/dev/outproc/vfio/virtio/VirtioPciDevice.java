package dev.outproc.vfio.virtio;

import dev.outproc.core.event.EventLoop;
import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.core.virtio.VirtioDeviceType;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtqueue.QueueConfig;
import dev.outproc.vfio.message.VfioUserProtocolException;
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

import static java.lang.System.Logger.Level.DEBUG;

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
 * {@link #exportState()} ({@link VirtioPciState}) next to its own state; the server calls its
 * {@link MigrationHandler#reset()} on VFIO_USER_DEVICE_RESET and when the client goes, not on a driver's reset. {@link #pauseQueues()} stops the rings where
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
    static final int STRUCTURE_WINDOW = 0x1000;
    /** The feature bits this transport passes from the device to the driver (VIRTIO 1.2 §6). */
    private static final long TRANSPORT_FEATURES = 0x00FF_FFFFL
            | VirtioFeature.maskOf(VirtioFeature.INDIRECT_DESC, VirtioFeature.EVENT_IDX, VirtioFeature.VERSION_1,
                    VirtioFeature.RING_PACKED, VirtioFeature.IN_ORDER, VirtioFeature.ORDER_PLATFORM)
            | 0xFFFC_0000_0000_0000L;

    private final VirtioDevice device;
    private final long offeredFeatures;
    private final PciQueue[] queues;
    private final EventLoop worker;
    private final TransportRegisters registers;
    private final TransportInterrupts interrupts;
    private final QueueLifecycle lifecycle;
    private final StructuresBar structures;
    private final PciDevice pci;
    private final TransportMigration transportMigration;
    private final int pciCfgCapability;
    private volatile MigrationHandler migration;

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
        this.offeredFeatures = (device.features() & TRANSPORT_FEATURES) | VirtioFeature.VERSION_1.mask();
        this.queues = new PciQueue[n];
        this.registers = new TransportRegisters(n);
        this.interrupts = new TransportInterrupts(registers, this::pci);
        this.worker = EventLoop.start("virtio-pci-" + type);
        this.lifecycle = new QueueLifecycle(device, max, queues, worker, registers, interrupts);
        this.structures = new StructuresBar(device, queues, registers,
                new CommonConfigAccess(device, offeredFeatures, max, queues, registers, lifecycle));
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
                .bar(STRUCTURES_BAR, structures)
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
                .onReset(this::functionReset);
        this.pci = b.build();
        this.transportMigration = new TransportMigration(device, offeredFeatures, max, queues, registers, lifecycle, pci);
        java.util.List<Integer> caps = config.capabilityOffsets();
        this.pciCfgCapability = caps.get(caps.size() - 1);
    }

    /** The PCI function's reset: after the config space and MSI-X, the virtio transport. */
    private void functionReset() {
        if (pci == null) {
            return; // the PCI function's first reset, during construction: everything is at its reset value
        }
        lifecycle.resetTransport();
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
        return registers.status;
    }

    /** {@return how many doorbell writes reached the notification area (REGION_WRITE) since creation} */
    public long notifications() {
        return structures.notifications();
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
        pci.reset(); // runs functionReset after the config space and MSI-X are back at power-on values
    }

    @Override
    public void attach(DeviceContext context) {
        lifecycle.setContext(context);
        pci.attach(context);
    }

    @Override
    public void detach() {
        // The client's memory goes next: the worker must be out of it first.
        lifecycle.stopAll();
        pci.detach();
        lifecycle.setContext(null);
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

    // ---- migration: see VirtioPciState and TransportMigration ----

    /** Stops every running queue where it stands (migration STOP); {@link #resumeQueues()} continues them there. */
    public void pauseQueues() {
        lifecycle.stopAll();
    }

    /** Starts again the enabled queues of a running driver (migration RUNNING), at their recorded positions. */
    public void resumeQueues() {
        transportMigration.resume();
    }

    /**
     * {@return the transport's state} Call it with the queues paused ({@link #pauseQueues()}), or the ring
     * positions are those of the last stop.
     */
    public VirtioPciState exportState() {
        return transportMigration.export();
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
        transportMigration.importState(s);
    }

    // ---- interrupts: see TransportInterrupts ----

    /** A used-buffer notification for a queue: its MSI-X vector, or INTx with the ISR queue bit. */
    void interruptQueue(PciQueue q) throws IOException {
        interrupts.queue(q);
    }

    /**
     * Tells the driver that the device's configuration changed (VIRTIO 1.2 §4.1.5.3): the generation
     * counter moves and the configuration vector (or INTx with the ISR's configuration bit) fires.
     */
    public void configChanged() {
        interrupts.config();
    }

    /** Stops the queues and the worker thread; the device cannot be served afterwards. */
    @Override
    public void close() {
        if (worker != null && worker.isRunning()) {
            lifecycle.stopAll();
            worker.close();
        }
        for (PciQueue q : queues) {
            if (q != null) {
                q.kick.close();
            }
        }
    }
}
