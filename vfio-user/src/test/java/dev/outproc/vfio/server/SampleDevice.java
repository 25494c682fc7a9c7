package dev.outproc.vfio.server;

import dev.outproc.core.fd.Errno;
import dev.outproc.core.fd.NativeException;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.MemFd;
import dev.outproc.core.memory.SharedMapping;
import dev.outproc.vfio.message.IrqInfo;
import dev.outproc.vfio.message.MigrationFeature;
import dev.outproc.vfio.message.RegionCapabilities;
import dev.outproc.vfio.message.RegionInfo;
import dev.outproc.vfio.message.VfioUserProtocolException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * A small PCI-shaped device for tests: BAR0 a 256-byte register file reached by messages (a write to
 * register 0x10 raises MSI-X vector 0; a write of a DMA address to 0x20 makes the device write 8 bytes
 * of register 0x28 there), BAR1 16 KiB of shared memory with two sparse mmap areas, a 256-byte config
 * space in region 7, INTx/MSI/MSI-X(4)/ERR/REQ, and migration (STOP_COPY | PRE_COPY) of BAR0's bytes.
 */
final class SampleDevice implements VfioUserDevice {
    static final int BAR0 = 0;
    static final int BAR1 = 1;
    static final int CONFIG = 7;
    static final long BAR1_SIZE = 0x4000;

    final MemorySegment bar0 = Arena.ofAuto().allocate(256);
    final MemorySegment config = Arena.ofAuto().allocate(256);
    private final OwnedFd bar1Fd;
    final SharedMapping bar1;
    volatile DeviceContext context;
    volatile int resets;
    private final Migration migration = new Migration();

    SampleDevice() throws NativeException {
        bar1Fd = MemFd.create("sample-bar1", BAR1_SIZE);
        bar1 = SharedMapping.map(bar1Fd.get(), 0, BAR1_SIZE, true);
        reset();
        resets = 0;
    }

    @Override
    public int regionCount() {
        return 9;
    }

    @Override
    public RegionDescription region(int index) {
        return switch (index) {
            case BAR0 -> RegionDescription.ofMessages(bar0.byteSize(), RegionInfo.FLAG_READ | RegionInfo.FLAG_WRITE);
            case BAR1 -> new RegionDescription(BAR1_SIZE, RegionInfo.FLAG_READ | RegionInfo.FLAG_WRITE, bar1Fd, 0,
                    List.of(new RegionCapabilities.SparseArea(0x1000, 0x1000), new RegionCapabilities.SparseArea(0x3000, 0x1000)), -1, 0);
            case CONFIG -> RegionDescription.ofMessages(config.byteSize(), RegionInfo.FLAG_READ | RegionInfo.FLAG_WRITE);
            default -> RegionDescription.ABSENT;
        };
    }

    private MemorySegment backing(int index) {
        return switch (index) {
            case BAR0 -> bar0;
            case BAR1 -> bar1.segment();
            default -> config;
        };
    }

    @Override
    public void regionRead(int index, long offset, MemorySegment destination) {
        MemorySegment.copy(backing(index), offset, destination, 0, destination.byteSize());
    }

    @Override
    public void regionWrite(int index, long offset, MemorySegment source) throws VfioUserProtocolException {
        if (index == CONFIG && offset < 4) {
            return; // IDs are read-only
        }
        MemorySegment.copy(source, 0, backing(index), offset, source.byteSize());
        DeviceContext c = context;
        try {
            if (index == BAR0 && offset == 0x10 && c != null) {
                c.interrupts().trigger(Interrupts.MSIX, 0);
            }
            if (index == BAR0 && offset == 0x20 && source.byteSize() == 8 && c != null) {
                c.dma().write(bar0.get(ValueLayout.JAVA_LONG_UNALIGNED, 0x20), bar0.asSlice(0x28, 8));
            }
        } catch (java.io.IOException e) {
            throw new VfioUserProtocolException(Errno.EIO, "device action failed: " + e.getMessage());
        }
    }

    @Override
    public int irqIndexCount() {
        return 5;
    }

    @Override
    public IrqDescription irq(int index) {
        return switch (index) {
            case Interrupts.INTX -> new IrqDescription(1, IrqInfo.FLAG_EVENTFD | IrqInfo.FLAG_MASKABLE | IrqInfo.FLAG_AUTOMASKED);
            case Interrupts.MSI -> new IrqDescription(1, IrqInfo.FLAG_EVENTFD | IrqInfo.FLAG_NORESIZE);
            case Interrupts.MSIX -> new IrqDescription(4, IrqInfo.FLAG_EVENTFD | IrqInfo.FLAG_NORESIZE);
            default -> new IrqDescription(1, IrqInfo.FLAG_EVENTFD);
        };
    }

    @Override
    public void reset() {
        bar0.fill((byte) 0);
        config.fill((byte) 0);
        config.set(ValueLayout.JAVA_SHORT_UNALIGNED, 0, (short) 0x4e58);
        config.set(ValueLayout.JAVA_SHORT_UNALIGNED, 2, (short) 0x0001);
        resets++;
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

    /**
     * Saves BAR0's 256 bytes, once in PRE_COPY and again in STOP_COPY; the stream is a sequence of 256-byte
     * frames and the last one wins, checked and restored on RESUMING -> STOP.
     */
    final class Migration implements MigrationHandler {
        private final MemorySegment stream = Arena.ofAuto().allocate(256);
        private long position;
        private long received;

        @Override
        public long migrationFlags() {
            return MigrationFeature.STOP_COPY | MigrationFeature.PRE_COPY;
        }

        @Override
        public void arc(MigrationState from, MigrationState to) throws VfioUserProtocolException {
            if (to == MigrationState.PRE_COPY || to == MigrationState.STOP_COPY && from != MigrationState.PRE_COPY) {
                stream.copyFrom(bar0);
                position = 0;
            } else if (to == MigrationState.STOP_COPY) {
                stream.copyFrom(bar0); // final state: the device may have changed during PRE_COPY
                position = 0;
            } else if (to == MigrationState.RESUMING) {
                received = 0;
            } else if (from == MigrationState.RESUMING && to == MigrationState.STOP) {
                if (received == 0 || received % stream.byteSize() != 0) {
                    throw new VfioUserProtocolException(Errno.EINVAL, "incomplete device state: " + received + " bytes, frames of "
                            + stream.byteSize());
                }
                bar0.copyFrom(stream);
            }
        }

        @Override
        public long read(MemorySegment destination) {
            long n = Math.min(destination.byteSize(), stream.byteSize() - position);
            MemorySegment.copy(stream, position, destination, 0, n);
            position += n;
            return n;
        }

        @Override
        public void write(MemorySegment source) throws VfioUserProtocolException {
            for (long i = 0; i < source.byteSize(); i++) {
                stream.set(ValueLayout.JAVA_BYTE, (received + i) % stream.byteSize(), source.get(ValueLayout.JAVA_BYTE, i));
            }
            received += source.byteSize();
        }
    }
}
