package dev.outproc.examples.vfio;

import dev.outproc.core.fd.Errno;
import dev.outproc.core.fd.NativeException;
import dev.outproc.vfio.message.MigrationFeature;
import dev.outproc.vfio.message.RegionCapabilities;
import dev.outproc.vfio.message.VfioUserProtocolException;
import dev.outproc.vfio.pci.BarHandler;
import dev.outproc.vfio.pci.PciConfigSpace;
import dev.outproc.vfio.pci.PciDevice;
import dev.outproc.vfio.server.MigrationHandler;
import dev.outproc.vfio.server.MigrationState;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * {@code vfio-user-sample}'s PCI card: a register file in BAR0 with side effects, 8 KiB of shared memory in
 * BAR2 (the first page mmap-able as a sparse area), MSI with one vector and INTx pin A, and migration
 * (STOP_COPY) of the registers.
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
 * The interrupt goes out as MSI when the driver enabled it, else on INTx.
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
    /** BAR2's size. */
    public static final long BAR2_SIZE = 0x2000;
    /** Bytes of the saved register state (SCRATCH .. RINGS). */
    static final int STATE_BYTES = 0x30;

    private final MemorySegment registers = Arena.ofAuto().allocate(STATE_BYTES, 8);
    private final MemorySegment dmaBuffer = Arena.ofAuto().allocate(MAX_DMA);
    private final PciDevice device;

    /**
     * Builds the card.
     *
     * @throws NativeException when BAR2's shared memory cannot be created
     */
    public SampleCard() throws NativeException {
        PciConfigSpace config = new PciConfigSpace(VENDOR_ID, DEVICE_ID, VENDOR_ID, 0x0001, CLASS_CODE, 1)
                .bar(0, BAR0_SIZE, PciConfigSpace.BarType.MEMORY32, false)
                .bar(2, BAR2_SIZE, PciConfigSpace.BarType.MEMORY64, true)
                .interruptPin(1);
        device = PciDevice.builder(config)
                .bar(0, this)
                .sharedMemory(2, List.of(new RegionCapabilities.SparseArea(0, 0x1000)))
                .msi(1)
                .onReset(this::resetRegisters)
                .migration(new Migration())
                .build();
        resetRegisters();
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

    /** Saves the registers in STOP_COPY and restores them when RESUMING ends. */
    private final class Migration implements MigrationHandler {
        private final MemorySegment stream = Arena.ofAuto().allocate(STATE_BYTES);
        private long position;
        private long received;

        @Override
        public long migrationFlags() {
            return MigrationFeature.STOP_COPY;
        }

        @Override
        public void arc(MigrationState from, MigrationState to) throws VfioUserProtocolException {
            if (to == MigrationState.STOP_COPY) {
                synchronized (SampleCard.this) {
                    stream.copyFrom(registers);
                }
                position = 0;
            } else if (to == MigrationState.RESUMING) {
                received = 0;
            } else if (from == MigrationState.RESUMING) {
                if (received != STATE_BYTES || stream.get(ValueLayout.JAVA_INT_UNALIGNED, ID) != ID_VALUE) {
                    throw new VfioUserProtocolException(Errno.EINVAL, "not a sample card's state: " + received + " bytes, expected "
                            + STATE_BYTES);
                }
                synchronized (SampleCard.this) {
                    registers.copyFrom(stream);
                }
            }
        }

        @Override
        public long read(MemorySegment destination) {
            long n = Math.min(destination.byteSize(), STATE_BYTES - position);
            MemorySegment.copy(stream, position, destination, 0, n);
            position += n;
            return n;
        }

        @Override
        public void write(MemorySegment source) throws VfioUserProtocolException {
            if (received + source.byteSize() > STATE_BYTES) {
                throw new VfioUserProtocolException(Errno.EINVAL, "device state too long: " + (received + source.byteSize())
                        + " bytes, expected " + STATE_BYTES);
            }
            MemorySegment.copy(source, 0, stream, received, source.byteSize());
            received += source.byteSize();
        }
    }
}
