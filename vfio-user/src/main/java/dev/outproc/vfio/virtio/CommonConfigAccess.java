package dev.outproc.vfio.virtio;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtio.VirtioStatus;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static java.lang.System.Logger.Level.DEBUG;
import static java.lang.System.Logger.Level.TRACE;

/**
 * Reads and writes of a {@link VirtioPciDevice}'s common configuration structure (VIRTIO 1.2 §4.1.4.3), field by
 * field at any width that stays inside one field ({@link CommonConfig} has the layout). Every value is the guest's:
 * see {@link VirtioPciDevice}, "Untrusted values", for what is ignored. {@code device_status} drives the queues'
 * life cycle: DRIVER_OK starts the enabled queues, 0 resets the transport.
 */
final class CommonConfigAccess {
    private static final System.Logger LOG = System.getLogger(VirtioPciDevice.class.getName());

    private final VirtioDevice device;
    private final long offeredFeatures;
    private final int maxQueueSize;
    private final PciQueue[] queues;
    private final TransportRegisters registers;
    private final QueueLifecycle lifecycle;

    CommonConfigAccess(VirtioDevice device, long offeredFeatures, int maxQueueSize, PciQueue[] queues, TransportRegisters registers,
                       QueueLifecycle lifecycle) {
        this.device = device;
        this.offeredFeatures = offeredFeatures;
        this.maxQueueSize = maxQueueSize;
        this.queues = queues;
        this.registers = registers;
        this.lifecycle = lifecycle;
    }

    private PciQueue selected() {
        return registers.queueSelect < registers.queueCount ? queues[registers.queueSelect] : null;
    }

    /** Reads {@code destination.byteSize()} bytes at offset {@code at} of the structure; bytes beyond it read 0. */
    void read(int at, MemorySegment destination) {
        if (LOG.isLoggable(TRACE)) {
            LOG.log(TRACE, "common read 0x" + Integer.toHexString(at) + "/" + destination.byteSize() + " = 0x"
                    + Long.toHexString(field(Math.max(0, fieldStart(at)))));
        }
        for (long i = 0; i < destination.byteSize(); ) {
            int offset = (int) (at + i);
            int field = fieldStart(offset);
            if (field < 0) {
                destination.set(ValueLayout.JAVA_BYTE, i, (byte) 0);
                i++;
                continue;
            }
            long value = field(field);
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

    private long field(int field) {
        synchronized (registers) {
            PciQueue q = selected();
            TransportRegisters r = registers;
            return switch (field) {
                case CommonConfig.DEVICE_FEATURE_SELECT -> r.deviceFeatureSelect & 0xFFFF_FFFFL;
                case CommonConfig.DEVICE_FEATURE -> r.deviceFeatureSelect == 0 ? offeredFeatures & 0xFFFF_FFFFL
                        : r.deviceFeatureSelect == 1 ? offeredFeatures >>> 32 : 0;
                case CommonConfig.DRIVER_FEATURE_SELECT -> r.driverFeatureSelect & 0xFFFF_FFFFL;
                case CommonConfig.DRIVER_FEATURE -> r.driverFeatureSelect == 0 ? r.driverFeatures & 0xFFFF_FFFFL
                        : r.driverFeatureSelect == 1 ? r.driverFeatures >>> 32 : 0;
                case CommonConfig.CONFIG_MSIX_VECTOR -> r.configMsixVector;
                case CommonConfig.NUM_QUEUES -> r.queueCount;
                case CommonConfig.DEVICE_STATUS -> r.status;
                case CommonConfig.CONFIG_GENERATION -> r.configGeneration.get() & 0xFF;
                case CommonConfig.QUEUE_SELECT -> r.queueSelect;
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

    /** Writes {@code source} at offset {@code at} of the structure; a write that does not fit one field is ignored. */
    void write(int at, MemorySegment source) {
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
        long value = (field(field) & ~mask) | ((written << shift) & mask);
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
        TransportRegisters r = registers;
        boolean running = (r.status & VirtioStatus.DRIVER_OK) != 0;
        switch (field) {
            case CommonConfig.DEVICE_FEATURE_SELECT -> r.deviceFeatureSelect = (int) value;
            case CommonConfig.DRIVER_FEATURE_SELECT -> r.driverFeatureSelect = (int) value;
            case CommonConfig.DRIVER_FEATURE -> {
                if ((r.status & VirtioStatus.FEATURES_OK) != 0) {
                    LOG.log(DEBUG, "driver_feature written after FEATURES_OK; ignored");
                } else if (r.driverFeatureSelect == 0) {
                    r.driverFeatures = (r.driverFeatures & 0xFFFF_FFFF_0000_0000L) | (value & 0xFFFF_FFFFL);
                } else if (r.driverFeatureSelect == 1) {
                    r.driverFeatures = (r.driverFeatures & 0xFFFF_FFFFL) | (value << 32);
                }
            }
            case CommonConfig.CONFIG_MSIX_VECTOR -> r.configMsixVector = r.vector((int) value);
            case CommonConfig.QUEUE_SELECT -> r.queueSelect = (int) value & 0xFFFF;
            case CommonConfig.QUEUE_SIZE -> {
                if (q == null || q.enabled) {
                    return;
                }
                int size = (int) value & 0xFFFF;
                boolean packed = r.packed();
                if (size < 1 || size > maxQueueSize || (!packed && Integer.bitCount(size) != 1)) {
                    LOG.log(DEBUG, "queue {0}: queue_size {1} refused (maximum {2}{3}); kept {4}", q.index(), size, maxQueueSize,
                            packed ? "" : ", a power of two", q.size);
                    return;
                }
                q.size = size;
            }
            case CommonConfig.QUEUE_MSIX_VECTOR -> {
                if (q != null) {
                    q.msixVector = r.vector((int) value);
                }
            }
            case CommonConfig.QUEUE_ENABLE -> {
                if (q != null && value == 1 && !q.enabled && ringsAcceptable(q)) {
                    q.enabled = true;
                    if (running) {
                        lifecycle.start(q);
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

    /** {@return whether a queue's rings are aligned and lie in the client's DMA memory} */
    private boolean ringsAcceptable(PciQueue q) {
        GuestMemory memory = lifecycle.dmaMemory();
        if (!PciQueue.ringsFit(registers.packed(), q.size, q.descAddr, q.driverAddr, q.deviceAddr, memory)) {
            LOG.log(DEBUG, "queue {0}: rings misaligned or outside the DMA memory desc=0x{1} driver=0x{2} device=0x{3}; not enabled",
                    q.index(), Long.toHexString(q.descAddr), Long.toHexString(q.driverAddr), Long.toHexString(q.deviceAddr));
            return false;
        }
        return true;
    }

    /** device_status (VIRTIO 1.2 §2.1, §3.1.1, §4.1.4.3.1). */
    private void writeStatus(int value) {
        if (value == 0) {
            // A virtio reset, not a PCI function reset: the config space (BARs, command, MSI-X) stays as the guest set it.
            lifecycle.resetTransport();
            LOG.log(DEBUG, "device reset by the driver");
            return;
        }
        int next;
        synchronized (registers) {
            TransportRegisters r = registers;
            int old = r.status;
            next = value | (old & VirtioStatus.DEVICE_NEEDS_RESET);
            if ((next & VirtioStatus.FEATURES_OK) != 0 && (old & VirtioStatus.FEATURES_OK) == 0) {
                long unsupported = r.driverFeatures & ~offeredFeatures;
                if (unsupported != 0 || (r.driverFeatures & VirtioFeature.VERSION_1.mask()) == 0) {
                    LOG.log(DEBUG, "FEATURES_OK refused: driver features 0x{0}, offered 0x{1}", Long.toHexString(r.driverFeatures),
                            Long.toHexString(offeredFeatures));
                    next &= ~VirtioStatus.FEATURES_OK;
                } else {
                    device.featuresNegotiated(r.driverFeatures);
                }
            }
            if ((next & VirtioStatus.DRIVER_OK) != 0 && (next & VirtioStatus.FEATURES_OK) == 0) {
                next &= ~VirtioStatus.DRIVER_OK; // no DRIVER_OK without accepted features
            }
            boolean start = (next & VirtioStatus.DRIVER_OK) != 0 && (old & VirtioStatus.DRIVER_OK) == 0;
            r.status = next;
            if (start) {
                lifecycle.startEnabled();
            }
        }
        device.statusChanged(next);
    }
}
