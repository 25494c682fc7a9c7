package dev.outproc.vfio.program;

import dev.outproc.vfio.pci.BarHandler;
import dev.outproc.vfio.pci.PciConfigSpace;
import dev.outproc.vfio.pci.PciDevice;

import java.lang.foreign.MemorySegment;

/** A one-BAR card served by {@link ServerProgram#main}: the program {@link ServerProgramTest} starts as a process. */
public final class TinyCardProgram {
    private TinyCardProgram() {
    }

    static PciDevice card() {
        PciConfigSpace config = new PciConfigSpace(0x4e58, 0x00f1, 0x4e58, 0x00f1, 0x088000, 1)
                .bar(0, 0x1000, PciConfigSpace.BarType.MEMORY32, false);
        return PciDevice.builder(config).bar(0, new BarHandler() {
            @Override
            public void read(long offset, MemorySegment destination) {
                destination.fill((byte) 0x5a);
            }

            @Override
            public void write(long offset, MemorySegment source) {
                // the card ignores writes
            }
        }).build();
    }

    /**
     * Serves the card.
     *
     * @param args {@code --socket-path PATH} or {@code --fd FDNUM}
     */
    public static void main(String[] args) {
        System.exit(ServerProgram.main(args, "tiny-card", TinyCardProgram::card));
    }
}
