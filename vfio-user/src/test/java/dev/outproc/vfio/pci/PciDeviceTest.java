package dev.outproc.vfio.pci;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.transport.UnixListener;
import dev.outproc.vfio.client.DeviceReport;
import dev.outproc.vfio.client.VfioUserClient;
import dev.outproc.vfio.message.Capabilities;
import dev.outproc.vfio.message.RegionCapabilities;
import dev.outproc.vfio.server.Interrupts;
import dev.outproc.vfio.server.ServerOptions;
import dev.outproc.vfio.server.VfioUserServer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A PCI device assembled from the library's parts, driven by our client over a socket. */
class PciDeviceTest {
    @TempDir
    Path dir;

    private static MemorySegment u32(int v) {
        MemorySegment s = Arena.ofAuto().allocate(4);
        s.set(ValueLayout.JAVA_INT_UNALIGNED, 0, v);
        return s;
    }

    @Test
    void shouldEnumerateSizeBarsAndRouteMsixThroughTheTableMask() throws Exception {
        MemorySegment registers = Arena.ofAuto().allocate(0x800);
        PciConfigSpace config = new PciConfigSpace(0x4e58, 0x0002, 0x4e58, 0x0100, 0x088000, 1)
                .bar(0, 0x1000, PciConfigSpace.BarType.MEMORY32, false)
                .bar(2, 0x4000, PciConfigSpace.BarType.MEMORY64, true)
                .interruptPin(1);
        PciDevice device = PciDevice.builder(config)
                .bar(0, new BarHandler() {
                    @Override
                    public void read(long offset, MemorySegment destination) {
                        MemorySegment.copy(registers, offset, destination, 0, destination.byteSize());
                    }

                    @Override
                    public void write(long offset, MemorySegment source) {
                        MemorySegment.copy(source, 0, registers, offset, source.byteSize());
                    }
                })
                .sharedMemory(2, List.of(new RegionCapabilities.SparseArea(0x1000, 0x1000)))
                .msix(4, 0, 0x800, 0, 0xC00)
                .capability(new PciCapability.PowerManagement())
                .capability(new PciCapability.PciExpress(0))
                .capability(new PciCapability.VendorSpecific(new byte[] {9, 9, 9, 9, 9}))
                .build();
        try (UnixListener listener = UnixListener.bind(dir.resolve("pci.sock"))) {
            VfioUserServer server = new VfioUserServer(device, ServerOptions.DEFAULTS);
            Thread t = Thread.ofPlatform().daemon().start(() -> server.serve(listener));
            try (VfioUserClient c = VfioUserClient.connect(dir.resolve("pci.sock")); Arena a = Arena.ofConfined()) {
                c.negotiate(Capabilities.builder().maxMsgFds(8).build());
                String report = DeviceReport.of(c);
                assertTrue(report.contains("[4e58:0002] class 088000 rev 01 subsystem [4e58:0100]"), report);
                assertTrue(report.contains("region 2 (BAR2): size=0x4000 [RWMC] memory 64-bit prefetchable"), report);
                assertTrue(report.contains("MSI-X: Enable- Count=4 Masked- Vector table: BAR=0 offset=00000800 PBA: BAR=0 offset=00000c00"), report);
                assertTrue(report.contains("Power Management") && report.contains("Express v2") && report.contains("Vendor Specific"), report);
                assertTrue(report.contains("irq 2 (MSI-X): count=4"), report);

                c.regionWrite(PciDevice.CONFIG_REGION, 0x10, u32(-1));
                MemorySegment bar = a.allocate(4);
                c.regionRead(PciDevice.CONFIG_REGION, 0x10, bar);
                assertEquals(0xFFFFF000, bar.get(ValueLayout.JAVA_INT_UNALIGNED, 0), "BAR0 probe through the socket");

                List<EventFd> vectors = new ArrayList<>();
                for (int i = 0; i < 4; i++) {
                    vectors.add(EventFd.create());
                }
                try {
                    c.setIrqEventFds(Interrupts.MSIX, 0, vectors);
                    int msix = config.capabilityOffsets().get(0);
                    c.regionWrite(PciDevice.CONFIG_REGION, msix, u32(0x8000 << 16)); // MSI-X Enable
                    assertTrue(device.msixEnabled());
                    assertFalse(device.raise(1), "vectors start masked in the table");
                    assertTrue(device.msixPending(1));
                    MemorySegment pba = a.allocate(8);
                    c.regionRead(0, 0xC00, pba);
                    assertEquals(2L, pba.get(ValueLayout.JAVA_LONG_UNALIGNED, 0), "PBA bit 1 through the BAR");
                    c.regionWrite(0, 0x800 + 16 + 12, u32(0)); // unmask vector 1 in the table
                    assertEquals(1, vectors.get(1).drain(), "unmasking delivered the pending vector");
                    assertFalse(device.msixPending(1));
                    assertTrue(device.raise(1));
                    assertEquals(1, vectors.get(1).drain());
                    c.regionWrite(PciDevice.CONFIG_REGION, msix, u32(0xC000 << 16)); // Function Mask
                    assertFalse(device.raise(1));
                    c.regionWrite(PciDevice.CONFIG_REGION, msix, u32(0x8000 << 16));
                    assertEquals(1, vectors.get(1).drain(), "clearing Function Mask delivered it");
                } finally {
                    vectors.forEach(EventFd::close);
                }
                c.regionWrite(0, 0x10, u32(0x1234));
                assertEquals(0x1234, registers.get(ValueLayout.JAVA_INT_UNALIGNED, 0x10));
            } finally {
                listener.close();
                server.disconnectClient();
                t.join(5000);
            }
            assertFalse(device.msixEnabled(), "the next client finds the device reset");
        }
    }
}
