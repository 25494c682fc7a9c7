package dev.outproc.vfio.interop;

import dev.outproc.core.transport.UnixListener;
import dev.outproc.vfio.message.RegionCapabilities;
import dev.outproc.vfio.pci.BarHandler;
import dev.outproc.vfio.pci.PciCapability;
import dev.outproc.vfio.pci.PciConfigSpace;
import dev.outproc.vfio.pci.PciDevice;
import dev.outproc.vfio.server.DmaSpace;
import dev.outproc.vfio.server.ServerOptions;
import dev.outproc.vfio.server.VfioUserServer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * QEMU 10.x's {@code vfio-user-pci} against our PCI device framework, no guest kernel: QEMU negotiates,
 * maps the guest's memfd RAM for DMA and reads the device's regions and IRQs; SeaBIOS then enumerates the
 * bus, sizes and assigns the BARs and enables memory decoding through config writes. Twice against the
 * same server process, which resets the device between the two QEMUs.
 */
class QemuEnumeratesPciDeviceIT {
    @TempDir
    Path dir;

    @Test
    void shouldBeEnumeratedAndProgrammedByQemuAndSeaBiosTwice() throws Exception {
        Path qemu = QemuVfioUserPeer.require();
        MemorySegment registers = Arena.ofAuto().allocate(0x1000);
        AtomicInteger barAccesses = new AtomicInteger();
        PciConfigSpace config = new PciConfigSpace(0x4e58, 0x0002, 0x4e58, 0x0100, 0xff0000, 1)
                .bar(0, 0x1000, PciConfigSpace.BarType.MEMORY32, false)
                .bar(2, 0x4000, PciConfigSpace.BarType.MEMORY64, true)
                .interruptPin(1);
        PciDevice device = PciDevice.builder(config)
                .bar(0, new BarHandler() {
                    @Override
                    public void read(long offset, MemorySegment destination) {
                        barAccesses.incrementAndGet();
                        MemorySegment.copy(registers, offset, destination, 0, destination.byteSize());
                    }

                    @Override
                    public void write(long offset, MemorySegment source) {
                        barAccesses.incrementAndGet();
                        MemorySegment.copy(source, 0, registers, offset, source.byteSize());
                    }
                })
                .sharedMemory(2, List.of(new RegionCapabilities.SparseArea(0, 0x4000)))
                .msix(4, 0, 0x800, 0, 0xC00)
                .capability(new PciCapability.PowerManagement())
                .capability(new PciCapability.PciExpress(0))
                .build();
        Path socket = dir.resolve("vfio.sock");
        try (UnixListener listener = UnixListener.bind(socket)) {
            VfioUserServer server = new VfioUserServer(device, ServerOptions.DEFAULTS);
            Thread serving = Thread.ofPlatform().daemon().start(() -> server.serve(listener));
            try {
                for (int run = 1; run <= 2; run++) {
                    AtomicReference<List<DmaSpace.Window>> windows = new AtomicReference<>(List.of());
                    AtomicInteger bar0Address = new AtomicInteger();
                    AtomicInteger command = new AtomicInteger();
                    Path log = dir.resolve("qemu-" + run + ".log");
                    Process p = new ProcessBuilder(qemu.toString(), "-L", "/usr/share/seabios", "-L", "/usr/share/qemu",
                            "-machine", "pc", "-accel", "tcg", "-m", "64", "-nodefaults", "-no-user-config", "-display", "none",
                            "-serial", "none", "-monitor", "none",
                            "-object", "memory-backend-memfd,id=mem,size=64M,share=on", "-numa", "node,memdev=mem",
                            "-device", "{\"driver\":\"vfio-user-pci\",\"socket\":{\"path\":\"" + socket + "\",\"type\":\"unix\"}}")
                            .redirectErrorStream(true).redirectOutput(log.toFile()).start();
                    try {
                        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                        while (System.nanoTime() < deadline && p.isAlive()) {
                            if (device.context() != null) {
                                windows.set(device.context().dma().windows());
                            }
                            bar0Address.set(config.read32(PciConfigSpace.BAR0) & ~0xF);
                            command.set(config.read16(PciConfigSpace.COMMAND));
                            if (bar0Address.get() != 0 && (command.get() & PciConfigSpace.COMMAND_MEMORY) != 0) {
                                break;
                            }
                            Thread.sleep(100);
                        }
                        assertTrue(p.isAlive(), "QEMU exited: " + Files.readString(log));
                    } finally {
                        p.destroy();
                        if (!p.waitFor(10, TimeUnit.SECONDS)) {
                            p.destroyForcibly();
                        }
                    }
                    System.out.printf("run %d: DMA windows %s; BAR0 at 0x%x; command 0x%04x; BAR0 accesses %d%n", run,
                            windows.get(), bar0Address.get(), command.get(), barAccesses.get());
                    assertTrue(windows.get().stream().anyMatch(w -> w.region() != null && w.sizeBytes() >= (32 << 20)),
                            "QEMU mapped its memfd RAM with an fd: " + windows.get());
                    assertNotEquals(0, bar0Address.get(), "SeaBIOS assigned BAR0");
                    assertEquals(PciConfigSpace.COMMAND_MEMORY, command.get() & PciConfigSpace.COMMAND_MEMORY, "memory decoding enabled");
                    long waitUntil = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                    // The session ends (context gone) before the device's reset runs: wait for both.
                    while ((device.context() != null || config.read16(PciConfigSpace.COMMAND) != 0)
                            && System.nanoTime() < waitUntil) {
                        Thread.sleep(50);
                    }
                    assertEquals(0, config.read16(PciConfigSpace.COMMAND), "the device was reset when QEMU went");
                }
            } finally {
                listener.close();
                server.disconnectClient();
                serving.join(5000);
            }
        }
    }
}
