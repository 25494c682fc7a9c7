package dev.outproc.examples.vfio;

import dev.outproc.core.fd.Errno;
import dev.outproc.core.fd.NativeException;
import dev.outproc.migration.handshake.DeviceDescriptor;
import dev.outproc.migration.handshake.HandshakeEndpoint;
import dev.outproc.vfio.message.RegionCapabilities;
import dev.outproc.vfio.message.VfioUserProtocolException;
import dev.outproc.vfio.pci.BarHandler;
import dev.outproc.vfio.pci.PciConfigSpace;
import dev.outproc.vfio.pci.PciDevice;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Map;

/**
 * {@code vfio-user-sample}'s PCI card: a register file in BAR0 with side effects, 8 KiB (or 16 KiB) of shared
 * memory in BAR2 (the first page mmap-able as a sparse area), MSI with one vector and INTx pin A, and migration
 * v2 with PRE_COPY of the registers and BAR2 as a migration-format stream ({@link SampleCardMigration},
 * {@link SampleCardState}).
 *
 * <pre>
 * BAR0 (4 KiB, 32-bit memory), little-endian registers:
 * 0x00 ID        ro  0x4f50534d ("MSPO" in memory)
 * 0x04 SCRATCH   rw  any value, kept until reset
 * 0x08 COUNTER   ro  counts its own reads: a read returns the count before it
 * 0x10 DMA_ADDR  rw  64-bit DMA address the doorbell writes to
 * 0x18 DMA_LEN   rw  bytes the doorbell writes, 1..4096
 * 0x1C SEED      rw  the pattern: byte i is (SEED + i) &amp; 0xff
 * 0x20 DOORBELL  wo  writing anything performs the DMA, sets STATUS, raises the interrupt
 * 0x24 STATUS    rw1c bit 0: DMA done, bit 1: DMA failed
 * 0x28 RINGS     ro  how often the doorbell rang
 * </pre>
 * The interrupt goes out as MSI when the driver enabled it, else on INTx. While the card is stopped for
 * migration (STOP, STOP_COPY, RESUMING) the doorbell does nothing: no DMA, no interrupt, no register change.
 * A function reset (VFIO_USER_DEVICE_RESET, the client going) returns the registers to their reset values and
 * clears BAR2.
 */
public final class SampleCard implements BarHandler {
    /** PCI vendor ID (an unassigned one, for examples). */
    public static final int VENDOR_ID = 0x4e58;
    /** PCI device ID. */
    public static final int DEVICE_ID = 0x0002;
    /** PCI class code: "other system peripheral". */
    public static final int CLASS_CODE = 0x088000;
    /** Register offsets in BAR0. */
    public static final int ID = 0x00, SCRATCH = 0x04, COUNTER = 0x08, DMA_ADDR = 0x10, DMA_LEN = 0x18, SEED = 0x1C,
            DOORBELL = 0x20, STATUS = 0x24, RINGS = 0x28;
    /** The value of the ID register. */
    public static final int ID_VALUE = 0x4f50534d;
    /** STATUS bits. */
    public static final int STATUS_DONE = 1, STATUS_ERROR = 2;
    /** The largest DMA_LEN. */
    public static final int MAX_DMA = 4096;
    /** BAR0's size. */
    public static final long BAR0_SIZE = 0x1000;
    /** BAR2's default size. */
    public static final long BAR2_SIZE = 0x2000;
    /** Bytes of the saved register state (SCRATCH .. RINGS). */
    static final int STATE_BYTES = 0x30;

    private final MemorySegment registers = Arena.ofAuto().allocate(STATE_BYTES, 8);
    private final MemorySegment dmaBuffer = Arena.ofAuto().allocate(MAX_DMA);
    private final PciDevice device;
    private final long bar2Bytes;
    private final SampleCardMigration migration;
    private volatile boolean running = true;

    /**
     * Builds the card with an 8 KiB BAR2 that migrates without a handshake.
     *
     * @throws NativeException when BAR2's shared memory cannot be created
     */
    public SampleCard() throws NativeException {
        this(BAR2_SIZE, false);
    }

    /**
     * Builds the card.
     *
     * @param bar2Bytes BAR2's size, 8 KiB or 16 KiB (the model's {@code bar2_bytes})
     * @param requireAgreement whether a save or load needs a handshake agreement ({@link #migrationAgreed})
     * @throws NativeException when BAR2's shared memory cannot be created
     */
    public SampleCard(long bar2Bytes, boolean requireAgreement) throws NativeException {
        if (bar2Bytes != 0x2000 && bar2Bytes != 0x4000) {
            throw new IllegalArgumentException("BAR2 must be 8 KiB or 16 KiB, bar2Bytes=" + bar2Bytes);
        }
        this.bar2Bytes = bar2Bytes;
        PciConfigSpace config = new PciConfigSpace(VENDOR_ID, DEVICE_ID, VENDOR_ID, 0x0001, CLASS_CODE, 1)
                .bar(0, BAR0_SIZE, PciConfigSpace.BarType.MEMORY32, false)
                .bar(2, bar2Bytes, PciConfigSpace.BarType.MEMORY64, true)
                .interruptPin(1);
        migration = new SampleCardMigration(this, requireAgreement);
        device = PciDevice.builder(config)
                .bar(0, this)
                .sharedMemory(2, List.of(new RegionCapabilities.SparseArea(0, 0x1000)))
                .msi(1)
                .onReset(this::resetCard)
                .migration(migration)
                .build();
        resetRegisters();
    }

    /**
     * The card's migration descriptor (registry-format.md §7): what the compatibility handshake compares.
     *
     * @return the descriptor
     */
    public DeviceDescriptor descriptor() {
        return new DeviceDescriptor(SampleCardState.MODEL_ID, SampleCardState.IMPLEMENTATION_ID, SampleCardState.FORMAT_CLASS,
                Map.of("bar2_bytes", Long.toString(bar2Bytes)), List.of(SampleCardState.FORMAT_VERSION),
                List.of(SampleCardState.FORMAT_VERSION));
    }

    /**
     * Takes the agreement of a handshake served on the card's migration endpoint: as source it governs the next
     * save (MIG_DATA_READ), as destination the next load (MIG_DATA_WRITE). Each agreement serves one transfer.
     *
     * @param agreed the role and agreement
     */
    public void migrationAgreed(HandshakeEndpoint.Agreed agreed) {
        migration.agreed(agreed);
    }

    /** {@return BAR2's size} */
    public long bar2Bytes() {
        return bar2Bytes;
    }

    /** {@return BAR2's shared memory} */
    MemorySegment bar2() {
        return device.barMemory(2);
    }

    /** {@return a copy of the register file} */
    synchronized MemorySegment registerSnapshot() {
        MemorySegment copy = Arena.ofAuto().allocate(STATE_BYTES, 8);
        copy.copyFrom(registers);
        return copy;
    }

    /** Loads a migrated state: registers and BAR2. */
    synchronized void restore(SampleCardState state) {
        state.applyRegisters(registers);
        MemorySegment.copy(state.bar2(), 0, bar2(), ValueLayout.JAVA_BYTE, 0, state.bar2().length);
    }

    /** Runs or stops the card (migration's RUNNING and STOP). */
    void setRunning(boolean value) {
        running = value;
    }

    /** A function reset (VFIO_USER_DEVICE_RESET, client gone; the server resets the migration handler itself). */
    private void resetCard() {
        running = true;
        resetRegisters();
        if (device != null) { // null during the PCI function's first reset, in the constructor: BAR2 is fresh zeros
            bar2().fill((byte) 0);
        }
    }

    /** {@return the PCI device to serve} */
    public PciDevice device() {
        return device;
    }

    private synchronized void resetRegisters() {
        registers.fill((byte) 0);
        registers.set(ValueLayout.JAVA_INT_UNALIGNED, ID, ID_VALUE);
    }

    private int reg32(int offset) {
        return registers.get(ValueLayout.JAVA_INT_UNALIGNED, offset);
    }

    private void setReg32(int offset, int value) {
        registers.set(ValueLayout.JAVA_INT_UNALIGNED, offset, value);
    }

    @Override
    public synchronized void read(long offset, MemorySegment destination) {
        destination.fill((byte) 0);
        if (offset < STATE_BYTES) {
            long n = Math.min(destination.byteSize(), STATE_BYTES - offset);
            MemorySegment.copy(registers, offset, destination, 0, n);
        }
        if (offset <= COUNTER && offset + destination.byteSize() > COUNTER) {
            setReg32(COUNTER, reg32(COUNTER) + 1);
        }
    }

    @Override
    public void write(long offset, MemorySegment source) throws VfioUserProtocolException {
        boolean ring;
        synchronized (this) {
            for (long i = 0; i < source.byteSize(); i++) {
                long at = offset + i;
                byte b = source.get(ValueLayout.JAVA_BYTE, i);
                if (at >= SCRATCH && at < COUNTER || at >= DMA_ADDR && at < DOORBELL) {
                    registers.set(ValueLayout.JAVA_BYTE, at, b);
                } else if (at >= STATUS && at < STATUS + 4) {
                    registers.set(ValueLayout.JAVA_BYTE, at, (byte) (registers.get(ValueLayout.JAVA_BYTE, at) & ~b));
                }
            }
            ring = offset < DOORBELL + 4 && offset + source.byteSize() > DOORBELL;
        }
        if (ring) {
            ringDoorbell();
        }
    }

    private void ringDoorbell() throws VfioUserProtocolException {
        if (!running) {
            return;
        }
        long address;
        int length;
        synchronized (this) {
            address = registers.get(ValueLayout.JAVA_LONG_UNALIGNED, DMA_ADDR);
            length = reg32(DMA_LEN);
            int seed = reg32(SEED);
            setReg32(RINGS, reg32(RINGS) + 1);
            if (length < 1 || length > MAX_DMA) {
                setReg32(STATUS, reg32(STATUS) | STATUS_ERROR);
                length = 0;
            }
            for (int i = 0; i < length; i++) {
                dmaBuffer.set(ValueLayout.JAVA_BYTE, i, (byte) (seed + i));
            }
        }
        var context = device.context();
        boolean ok = false;
        if (length > 0 && context != null) {
            try {
                context.dma().write(address, dmaBuffer.asSlice(0, length));
                ok = true;
            } catch (IOException e) {
                ok = false;
            }
        }
        synchronized (this) {
            setReg32(STATUS, reg32(STATUS) | (ok ? STATUS_DONE : STATUS_ERROR));
        }
        try {
            device.raise(0);
        } catch (NativeException e) {
            throw new VfioUserProtocolException(Errno.EIO, "interrupt failed: " + e.getMessage());
        }
    }
}
