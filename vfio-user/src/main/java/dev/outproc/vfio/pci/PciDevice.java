package dev.outproc.vfio.pci;

import dev.outproc.core.fd.NativeException;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.MemFd;
import dev.outproc.core.memory.SharedMapping;
import dev.outproc.vfio.message.IrqInfo;
import dev.outproc.vfio.message.RegionCapabilities;
import dev.outproc.vfio.message.RegionInfo;
import dev.outproc.vfio.message.VfioUserProtocolException;
import dev.outproc.vfio.server.DeviceContext;
import dev.outproc.vfio.server.Interrupts;
import dev.outproc.vfio.server.IrqDescription;
import dev.outproc.vfio.server.MigrationHandler;
import dev.outproc.vfio.server.RegionDescription;
import dev.outproc.vfio.server.VfioUserDevice;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * A PCI function served over vfio-user, assembled from parts: a {@link PciConfigSpace} (region 7), BARs
 * (regions 0-5) backed by a {@link BarHandler}, by shared memory (an fd the client may mmap, whole or in
 * sparse areas) or both, and MSI-X with its table and pending-bit array emulated inside a BAR. The IRQ
 * indexes follow vfio-pci: INTx (1 when the header has an interrupt pin), MSI (from its capability), MSI-X
 * (the table size), ERR and REQ (1 each).
 *
 * <p>{@link #raise(int)} signals an interrupt the way the guest configured it: MSI-X when enabled (a
 * masked vector or a masked function sets the pending bit instead; unmasking delivers it), else MSI, else
 * INTx unless the command register disables it.
 *
 * {@snippet :
 * PciConfigSpace config = new PciConfigSpace(0x1af4, 0x10ff, 0x1af4, 0x0001, 0xff0000, 1)
 *         .bar(0, 0x1000, PciConfigSpace.BarType.MEMORY32, false)
 *         .interruptPin(1);
 * PciDevice device = PciDevice.builder(config)
 *         .bar(0, registers)              // a BarHandler
 *         .msix(4, 0, 0x800, 0, 0xC00)    // table and PBA in BAR0
 *         .build();
 * }
 */
public final class PciDevice implements VfioUserDevice {
    /** Region index of the config space. */
    public static final int CONFIG_REGION = 7;
    private static final int REGIONS = 9;

    private final PciConfigSpace config;
    private final BarHandler[] handlers;
    private final SharedMapping[] memories;
    private final OwnedFd[] memoryFds;
    private final List<RegionCapabilities.SparseArea>[] sparse;
    private final PciCapability.MsiX msix;
    private final int msixCapability;
    private final int msiVectors;
    private final int msiCapability;
    private final MemorySegment msixTable;
    private final long[] msixPending;
    /** Whether the client emulates the MSI-X table (see {@link Builder#msixTableInClient()}). */
    private final boolean msixTableInClient;
    /** Per vector: whether the client wrote its table entry since the last reset. */
    private final boolean[] msixEntryWritten;
    private final Runnable onReset;
    private final MigrationHandler migration;
    private volatile DeviceContext context;

    private PciDevice(Builder b) {
        this.config = b.config;
        this.handlers = b.handlers;
        this.memories = b.memories;
        this.memoryFds = b.memoryFds;
        this.sparse = b.sparse;
        this.msix = b.msix;
        this.msixCapability = b.msix == null ? -1 : config.addCapability(b.msix);
        this.msiVectors = b.msiVectors;
        this.msiCapability = b.msiVectors == 0 ? -1 : config.addCapability(new PciCapability.Msi(b.msiVectors));
        for (PciCapability extra : b.extra) {
            config.addCapability(extra);
        }
        this.msixTable = msix == null ? null : MemorySegment.ofArray(new byte[(int) msix.tableBytes()]);
        this.msixPending = msix == null ? null : new long[(int) (msix.pbaBytes() / 8)];
        this.msixTableInClient = b.msixTableInClient;
        this.msixEntryWritten = msix == null ? null : new boolean[msix.tableSize()];
        this.onReset = b.onReset;
        this.migration = b.migration;
        reset();
    }

    /**
     * Starts a device around a config space (BARs declared there).
     *
     * @param config the config space
     * @return a builder
     */
    public static Builder builder(PciConfigSpace config) {
        return new Builder(config);
    }

    /** {@return the config space} */
    public PciConfigSpace config() {
        return config;
    }

    /** {@return the client's DMA space and interrupts while a client is attached, else {@code null}} */
    public DeviceContext context() {
        return context;
    }

    /**
     * {@return the shared memory of a BAR, or {@code null}}
     *
     * @param bar the BAR index
     */
    public MemorySegment barMemory(int bar) {
        return memories[bar] == null ? null : memories[bar].segment();
    }

    @Override
    public int regionCount() {
        return REGIONS;
    }

    @Override
    public RegionDescription region(int index) {
        if (index == CONFIG_REGION) {
            return RegionDescription.ofMessages(PciConfigSpace.SIZE, RegionInfo.FLAG_READ | RegionInfo.FLAG_WRITE);
        }
        if (index > 5 || config.barSize(index) == 0) {
            return RegionDescription.ABSENT;
        }
        int rw = RegionInfo.FLAG_READ | RegionInfo.FLAG_WRITE;
        if (memoryFds[index] != null) {
            return new RegionDescription(config.barSize(index), rw, memoryFds[index], 0, sparse[index], -1, 0);
        }
        return RegionDescription.ofMessages(config.barSize(index), rw);
    }

    @Override
    public void regionRead(int index, long offset, MemorySegment destination) throws VfioUserProtocolException {
        if (index == CONFIG_REGION) {
            config.read(offset, destination);
            return;
        }
        if (msix != null && inMsix(index, offset, destination.byteSize(), true)) {
            synchronized (this) {
                MemorySegment.copy(msixTable, offset - msix.tableOffset(), destination, 0, destination.byteSize());
            }
            return;
        }
        if (msix != null && inMsix(index, offset, destination.byteSize(), false)) {
            synchronized (this) {
                MemorySegment pba = MemorySegment.ofArray(msixPending);
                MemorySegment.copy(pba, offset - msix.pbaOffset(), destination, 0, destination.byteSize());
            }
            return;
        }
        if (handlers[index] != null) {
            handlers[index].read(offset, destination);
        } else if (memories[index] != null) {
            MemorySegment.copy(memories[index].segment(), offset, destination, 0, destination.byteSize());
        } else {
            destination.fill((byte) 0xFF);
        }
    }

    @Override
    public void regionWrite(int index, long offset, MemorySegment source) throws VfioUserProtocolException {
        if (index == CONFIG_REGION) {
            config.write(offset, source);
            if (msixCapability >= 0) {
                deliverPendingMsix();
            }
            return;
        }
        if (msix != null && inMsix(index, offset, source.byteSize(), true)) {
            synchronized (this) {
                MemorySegment.copy(source, 0, msixTable, offset - msix.tableOffset(), source.byteSize());
                long first = (offset - msix.tableOffset()) / 16;
                long last = (offset - msix.tableOffset() + source.byteSize() - 1) / 16;
                for (long v = first; v <= last; v++) {
                    msixEntryWritten[(int) v] = true;
                }
            }
            deliverPendingMsix();
            return;
        }
        if (msix != null && inMsix(index, offset, source.byteSize(), false)) {
            return; // the pending-bit array is read-only
        }
        if (handlers[index] != null) {
            handlers[index].write(offset, source);
        } else if (memories[index] != null) {
            MemorySegment.copy(source, 0, memories[index].segment(), offset, source.byteSize());
        }
    }

    private boolean inMsix(int bar, long offset, long length, boolean table) {
        int b = table ? msix.tableBar() : msix.pbaBar();
        long start = table ? msix.tableOffset() : msix.pbaOffset();
        long size = table ? msix.tableBytes() : msix.pbaBytes();
        return bar == b && offset >= start && offset + length <= start + size;
    }

    @Override
    public int irqIndexCount() {
        return 5;
    }

    @Override
    public IrqDescription irq(int index) {
        return switch (index) {
            case Interrupts.INTX -> new IrqDescription((config.read16(0x3C) >> 8) != 0 ? 1 : 0,
                    IrqInfo.FLAG_EVENTFD | IrqInfo.FLAG_MASKABLE | IrqInfo.FLAG_AUTOMASKED);
            case Interrupts.MSI -> new IrqDescription(msiVectors, IrqInfo.FLAG_EVENTFD | IrqInfo.FLAG_NORESIZE);
            case Interrupts.MSIX -> new IrqDescription(msix == null ? 0 : msix.tableSize(), IrqInfo.FLAG_EVENTFD | IrqInfo.FLAG_NORESIZE);
            default -> new IrqDescription(1, IrqInfo.FLAG_EVENTFD);
        };
    }

    /** {@return whether the guest enabled MSI-X} */
    public boolean msixEnabled() {
        return msixCapability >= 0 && (config.read16(msixCapability + 2) & 0x8000) != 0;
    }

    /** {@return whether the guest enabled MSI} */
    public boolean msiEnabled() {
        return msiCapability >= 0 && (config.read16(msiCapability + 2) & 0x1) != 0;
    }

    /**
     * Raises an interrupt the way the guest configured the function.
     *
     * @param vector the MSI-X or MSI vector (0 for INTx)
     * @return whether an eventfd was signalled (false: pending, masked, disabled or no client)
     * @throws NativeException when the eventfd write fails
     */
    public boolean raise(int vector) throws NativeException {
        DeviceContext c = context;
        if (c == null) {
            return false;
        }
        if (msixEnabled()) {
            synchronized (this) {
                boolean functionMasked = (config.read16(msixCapability + 2) & 0x4000) != 0;
                if (functionMasked || vectorMasked(vector)) {
                    msixPending[vector >>> 6] |= 1L << (vector & 63);
                    return false;
                }
            }
            return c.interrupts().trigger(Interrupts.MSIX, vector);
        }
        if (msiEnabled()) {
            return c.interrupts().trigger(Interrupts.MSI, vector);
        }
        if ((config.read16(PciConfigSpace.COMMAND) & PciConfigSpace.COMMAND_INTX_DISABLE) != 0 || irq(Interrupts.INTX).count() == 0) {
            return false;
        }
        config.setByDevice(PciConfigSpace.STATUS, config.read16(PciConfigSpace.STATUS) | 0x08); // Interrupt Status
        return c.interrupts().trigger(Interrupts.INTX, 0);
    }

    /**
     * {@return whether a vector's table entry masks it} With {@link Builder#msixTableInClient()} an entry
     * the client never wrote does not: the client keeps the guest's table and masks on its side.
     */
    private boolean vectorMasked(int vector) {
        if (msixTableInClient && !msixEntryWritten[vector]) {
            return false;
        }
        return (msixTable.get(ValueLayout.JAVA_INT_UNALIGNED, 16L * vector + 12) & 1) != 0;
    }

    /**
     * {@return whether an MSI-X vector's pending bit is set}
     *
     * @param vector the vector
     */
    public synchronized boolean msixPending(int vector) {
        return (msixPending[vector >>> 6] & (1L << (vector & 63))) != 0;
    }

    /**
     * {@return the MSI-X pending-bit array as a BAR read of it returns it (8 bytes per 64 vectors, host byte order as
     * for every BAR access; vector {@code v} is bit {@code v % 8} of byte {@code v / 8} on a little-endian host), for a
     * saved state; empty without MSI-X}
     */
    public synchronized byte[] exportMsixPending() {
        return msixPending == null ? new byte[0] : MemorySegment.ofArray(msixPending).toArray(ValueLayout.JAVA_BYTE);
    }

    /**
     * Checks a saved MSI-X pending-bit array against this function without taking it.
     *
     * @param bits the array as {@link #exportMsixPending()} returns it, or empty for none pending
     * @throws IllegalArgumentException when the length is another, or a bit beyond the table's vectors is set
     */
    public void checkMsixPending(byte[] bits) {
        int vectors = msix == null ? 0 : msix.tableSize();
        int length = msixPending == null ? 0 : 8 * msixPending.length;
        if (bits.length == 0) {
            return;
        }
        if (bits.length != length) {
            throw new IllegalArgumentException("MSI-X pending-bit array of " + bits.length + " bytes, this function has " + length);
        }
        for (int v = vectors; v < 8 * bits.length; v++) {
            if ((bits[v >>> 3] & (1 << (v & 7))) != 0) {
                throw new IllegalArgumentException("MSI-X pending bit " + v + " set beyond the table's " + vectors + " vectors");
            }
        }
    }

    /**
     * Takes the MSI-X pending-bit array of a saved state. Nothing is delivered now: a pending vector goes out when
     * the driver unmasks it, as after any masked raise.
     *
     * @param bits the array as {@link #exportMsixPending()} returns it, or empty for none pending
     * @throws IllegalArgumentException when {@link #checkMsixPending} refuses it
     */
    public synchronized void importMsixPending(byte[] bits) {
        checkMsixPending(bits);
        if (msixPending == null) {
            return;
        }
        java.util.Arrays.fill(msixPending, 0);
        if (bits.length != 0) {
            MemorySegment.copy(bits, 0, MemorySegment.ofArray(msixPending), ValueLayout.JAVA_BYTE, 0, bits.length);
        }
    }

    private void deliverPendingMsix() {
        DeviceContext c = context;
        if (c == null || !msixEnabled()) {
            return;
        }
        for (int v = 0; v < msix.tableSize(); v++) {
            boolean deliver;
            synchronized (this) {
                boolean functionMasked = (config.read16(msixCapability + 2) & 0x4000) != 0;
                deliver = msixPending(v) && !functionMasked && !vectorMasked(v);
                if (deliver) {
                    msixPending[v >>> 6] &= ~(1L << (v & 63));
                }
            }
            if (deliver) {
                try {
                    c.interrupts().trigger(Interrupts.MSIX, v);
                } catch (NativeException e) {
                    System.getLogger(PciDevice.class.getName()).log(System.Logger.Level.WARNING, "MSI-X delivery failed", e);
                }
            }
        }
    }

    @Override
    public synchronized void reset() {
        config.reset();
        if (msixTable != null) {
            msixTable.fill((byte) 0);
            for (int v = 0; v < msix.tableSize(); v++) {
                msixTable.set(ValueLayout.JAVA_INT_UNALIGNED, 16L * v + 12, 1); // vectors start masked
            }
            java.util.Arrays.fill(msixPending, 0);
            java.util.Arrays.fill(msixEntryWritten, false);
        }
        if (onReset != null) {
            onReset.run();
        }
    }

    @Override
    public void attach(DeviceContext context) {
        this.context = context;
    }

    @Override
    public void detach() {
        this.context = null;
    }

    @Override
    public MigrationHandler migration() {
        return migration;
    }

    /** Assembles a {@link PciDevice}. */
    public static final class Builder {
        private final PciConfigSpace config;
        private final BarHandler[] handlers = new BarHandler[6];
        private final SharedMapping[] memories = new SharedMapping[6];
        private final OwnedFd[] memoryFds = new OwnedFd[6];
        @SuppressWarnings("unchecked")
        private final List<RegionCapabilities.SparseArea>[] sparse = new List[6];
        private final java.util.ArrayList<PciCapability> extra = new java.util.ArrayList<>();
        private PciCapability.MsiX msix;
        private int msiVectors;
        private boolean msixTableInClient;
        private Runnable onReset;
        private MigrationHandler migration;

        private Builder(PciConfigSpace config) {
            this.config = config;
        }

        /**
         * Backs a BAR with a handler.
         *
         * @param index the BAR (declared in the config space)
         * @param handler the handler
         * @return this
         */
        public Builder bar(int index, BarHandler handler) {
            requireBar(index);
            handlers[index] = handler;
            return this;
        }

        /**
         * Backs a BAR with shared memory the client may mmap (a new memfd of the BAR's size); with sparse
         * areas only those parts are offered for mmap, the rest goes through the handler (if any) or the
         * memory.
         *
         * @param index the BAR
         * @param sparseAreas the mmappable parts, or {@code null} for the whole BAR
         * @return this
         * @throws NativeException when the memfd cannot be created or mapped
         */
        public Builder sharedMemory(int index, List<RegionCapabilities.SparseArea> sparseAreas) throws NativeException {
            requireBar(index);
            long size = config.barSize(index);
            memoryFds[index] = MemFd.create("outproc-bar" + index, size);
            memories[index] = SharedMapping.map(memoryFds[index].get(), 0, size, true);
            sparse[index] = sparseAreas == null ? null : List.copyOf(sparseAreas);
            return this;
        }

        /**
         * Adds MSI-X with its table and pending-bit array in BARs.
         *
         * @param vectors the number of vectors
         * @param tableBar the BAR of the table
         * @param tableOffset its offset
         * @param pbaBar the BAR of the pending-bit array
         * @param pbaOffset its offset
         * @return this
         */
        public Builder msix(int vectors, int tableBar, long tableOffset, int pbaBar, long pbaOffset) {
            requireBar(tableBar);
            requireBar(pbaBar);
            PciCapability.MsiX m = new PciCapability.MsiX(vectors, tableBar, tableOffset, pbaBar, pbaOffset);
            if (tableOffset + m.tableBytes() > config.barSize(tableBar) || pbaOffset + m.pbaBytes() > config.barSize(pbaBar)) {
                throw new IllegalArgumentException("MSI-X table or PBA outside its BAR");
            }
            msix = m;
            return this;
        }

        /**
         * Says that the client may keep the MSI-X table itself, as QEMU's {@code vfio-user-pci} does (like
         * vfio-pci for kernel devices, it emulates the table and pending bits for the guest and never
         * forwards table writes; it masks a vector on its side and through SET_IRQS). A table entry the
         * client never wrote since the last reset then does not mask its vector; entries it writes work
         * as usual, so a client that does forward the table keeps its masks and pending bits.
         *
         * @return this
         */
        public Builder msixTableInClient() {
            msixTableInClient = true;
            return this;
        }

        /**
         * Adds MSI.
         *
         * @param vectors a power of two from 1 to 32
         * @return this
         */
        public Builder msi(int vectors) {
            new PciCapability.Msi(vectors);
            msiVectors = vectors;
            return this;
        }

        /**
         * Adds another capability (power management, PCI Express, vendor-specific or the device's own).
         *
         * @param capability the capability
         * @return this
         */
        public Builder capability(PciCapability capability) {
            extra.add(capability);
            return this;
        }

        /**
         * Runs on every reset, after the config space is back at power-on values.
         *
         * @param action the device's own reset
         * @return this
         */
        public Builder onReset(Runnable action) {
            onReset = action;
            return this;
        }

        /**
         * Makes the device migratable.
         *
         * @param handler the migration callbacks
         * @return this
         */
        public Builder migration(MigrationHandler handler) {
            migration = handler;
            return this;
        }

        private void requireBar(int index) {
            if (index < 0 || index > 5 || config.barSize(index) == 0) {
                throw new IllegalArgumentException("BAR" + index + " is not declared in the config space");
            }
        }

        /** {@return the device} */
        public PciDevice build() {
            return new PciDevice(this);
        }
    }
}
