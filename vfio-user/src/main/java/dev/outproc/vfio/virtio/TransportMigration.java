package dev.outproc.vfio.virtio;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtio.VirtioStatus;
import dev.outproc.core.virtqueue.QueueState;
import dev.outproc.vfio.message.VfioUserProtocolException;
import dev.outproc.vfio.pci.PciDevice;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * A {@link VirtioPciDevice}'s transport state for migration ({@link VirtioPciState}): taken from the registers, the
 * queues' stop positions and the PCI function's MSI-X state, and given back to them after a check against this
 * device and the client's DMA space that leaves everything as it was when it fails.
 */
final class TransportMigration {
    private final VirtioDevice device;
    private final long offeredFeatures;
    private final int maxQueueSize;
    private final PciQueue[] queues;
    private final TransportRegisters registers;
    private final QueueLifecycle lifecycle;
    private final PciDevice pci;

    TransportMigration(VirtioDevice device, long offeredFeatures, int maxQueueSize, PciQueue[] queues, TransportRegisters registers,
                       QueueLifecycle lifecycle, PciDevice pci) {
        this.device = device;
        this.offeredFeatures = offeredFeatures;
        this.maxQueueSize = maxQueueSize;
        this.queues = queues;
        this.registers = registers;
        this.lifecycle = lifecycle;
        this.pci = pci;
    }

    /** Starts again the enabled queues of a running driver, at their recorded positions. */
    void resume() {
        synchronized (registers) {
            int status = registers.status;
            if ((status & VirtioStatus.DRIVER_OK) == 0 || (status & VirtioStatus.DEVICE_NEEDS_RESET) != 0) {
                return;
            }
            lifecycle.startEnabled();
        }
    }

    /** {@return the transport's state; see {@link VirtioPciDevice#exportState()}} */
    VirtioPciState export() {
        synchronized (registers) {
            List<VirtioPciState.Queue> list = new ArrayList<>();
            for (PciQueue q : queues) {
                QueueState s = q.stopped;
                list.add(new VirtioPciState.Queue(q.index(), q.size, q.enabled, q.msixVector, q.descAddr, q.driverAddr,
                        q.deviceAddr, s != null, s == null ? 0 : s.nextAvail(), s == null ? 0 : s.nextUsed(),
                        s != null && s.availWrapCounter(), s != null && s.usedWrapCounter()));
            }
            byte[] table = new byte[16 * (registers.queueCount + 1)];
            try {
                pci.regionRead(VirtioPciDevice.MSIX_BAR, 0, MemorySegment.ofArray(table));
            } catch (VfioUserProtocolException e) {
                throw new IllegalStateException("MSI-X table unreadable: " + e.getMessage(), e);
            }
            TransportRegisters r = registers;
            return new VirtioPciState(r.deviceFeatureSelect, r.driverFeatureSelect, r.driverFeatures, r.status, r.queueSelect,
                    r.configMsixVector, r.configGeneration.get() & 0xFF, r.isr.get(),
                    pci.config().read16(msixCapabilityOffset() + 2) & 0xFFFF, table, list, pci.exportMsixPending());
        }
    }

    /** Checks a saved state, then takes it; see {@link VirtioPciDevice#importState}. */
    void importState(VirtioPciState s) throws IOException {
        lifecycle.stopAll();
        synchronized (registers) {
            check(s);
            TransportRegisters r = registers;
            r.deviceFeatureSelect = s.deviceFeatureSelect();
            r.driverFeatureSelect = s.driverFeatureSelect();
            r.driverFeatures = s.driverFeatures();
            r.queueSelect = s.queueSelect();
            r.configMsixVector = s.configMsixVector();
            r.configGeneration.set(s.configGeneration());
            r.isr.set(s.isr());
            boolean packed = TransportRegisters.packed(s.driverFeatures());
            boolean eventIdx = (s.driverFeatures() & VirtioFeature.EVENT_IDX.mask()) != 0;
            for (VirtioPciState.Queue saved : s.queues()) {
                PciQueue q = queues[saved.index()];
                q.size = saved.size();
                q.enabled = saved.enabled();
                q.msixVector = saved.msixVector();
                q.descAddr = saved.descAddr();
                q.driverAddr = saved.driverAddr();
                q.deviceAddr = saved.deviceAddr();
                q.broken = false;
                q.stopped = saved.running() ? new QueueState(saved.size(), saved.descAddr(), saved.driverAddr(), saved.deviceAddr(),
                        saved.nextAvail(), saved.nextUsed(), packed && saved.availWrap(), packed && saved.usedWrap(), eventIdx) : null;
            }
            try {
                pci.regionWrite(VirtioPciDevice.MSIX_BAR, 0, MemorySegment.ofArray(s.msixTable()));
                MemorySegment control = MemorySegment.ofArray(new byte[] {(byte) s.msixControl(), (byte) (s.msixControl() >>> 8)});
                pci.regionWrite(PciDevice.CONFIG_REGION, msixCapabilityOffset() + 2, control);
                pci.importMsixPending(s.msixPending()); // checked above; after the table, whose writes deliver nothing pending
            } catch (VfioUserProtocolException e) {
                throw new IOException("MSI-X state not accepted: " + e.getMessage(), e);
            }
            r.status = s.deviceStatus();
            if ((r.status & VirtioStatus.FEATURES_OK) != 0) {
                device.featuresNegotiated(r.driverFeatures);
            }
        }
        device.statusChanged(s.deviceStatus());
    }

    private void check(VirtioPciState s) throws IOException {
        int queueCount = registers.queueCount;
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
        if (registers.vector(s.configMsixVector()) != s.configMsixVector()) {
            throw new IOException("config_msix_vector beyond the MSI-X table of " + (queueCount + 1) + ": " + s.configMsixVector());
        }
        if (s.msixTable().length != 16 * (queueCount + 1)) {
            throw new IOException("MSI-X table of " + s.msixTable().length + " bytes for " + (queueCount + 1) + " vectors");
        }
        checkPending(s.msixPending());
        boolean packed = TransportRegisters.packed(s.driverFeatures());
        GuestMemory memory = lifecycle.dmaMemory();
        for (int i = 0; i < queueCount; i++) {
            VirtioPciState.Queue r = s.queues().get(i);
            String q = "queue " + i + ": ";
            if (r.index() != i) {
                throw new IOException(q + "record of queue " + r.index() + " out of order");
            }
            if (r.size() < 1 || r.size() > maxQueueSize || (!packed && Integer.bitCount(r.size()) != 1)) {
                throw new IOException(q + "queue_size " + r.size() + " not offered (maximum " + maxQueueSize + (packed ? ")" : ", a power of two)"));
            }
            if (registers.vector(r.msixVector()) != r.msixVector()) {
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
            if (r.enabled() && !PciQueue.ringsFit(packed, r.size(), r.descAddr(), r.driverAddr(), r.deviceAddr(), memory)) {
                throw new IOException(q + "rings misaligned or outside the DMA space: desc=0x" + Long.toHexString(r.descAddr())
                        + " driver=0x" + Long.toHexString(r.driverAddr()) + " device=0x" + Long.toHexString(r.deviceAddr()));
            }
        }
    }

    /** The pending-bit array: empty, or this function's length with no bit beyond the table's vectors. */
    private void checkPending(byte[] pending) throws IOException {
        try {
            pci.checkMsixPending(pending);
        } catch (IllegalArgumentException e) {
            throw new IOException(e.getMessage(), e);
        }
    }

    private int msixCapabilityOffset() {
        return pci.config().capabilityOffsets().get(0);
    }
}
