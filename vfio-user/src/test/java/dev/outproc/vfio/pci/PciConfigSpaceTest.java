package dev.outproc.vfio.pci;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class PciConfigSpaceTest {
    private static void write32(PciConfigSpace c, int at, int value) {
        MemorySegment s = Arena.ofAuto().allocate(4);
        s.set(ValueLayout.JAVA_INT_UNALIGNED, 0, value);
        c.write(at, s);
    }

    private static PciConfigSpace sample() {
        return new PciConfigSpace(0x4e58, 0x0002, 0x4e58, 0x0100, 0x0880_00, 3)
                .bar(0, 0x1000, PciConfigSpace.BarType.MEMORY32, false)
                .bar(2, 0x10_0000_0000L, PciConfigSpace.BarType.MEMORY64, true)
                .bar(4, 0x100, PciConfigSpace.BarType.IO, false)
                .interruptPin(1);
    }

    @Test
    void shouldSizeBarsTheWayAGuestProbesThem() {
        PciConfigSpace c = sample();
        write32(c, 0x10, -1);
        assertEquals(0xFFFFF000, c.read32(0x10), "32-bit memory BAR of 4 KiB");
        write32(c, 0x18, -1);
        write32(c, 0x1C, -1);
        assertEquals(0x0000000C, c.read32(0x18), "64-bit prefetchable BAR: low half all zeros for 64 GiB, type bits kept");
        assertEquals(0xFFFFFFF0, c.read32(0x1C), "upper half says 64 GiB");
        write32(c, 0x20, -1);
        assertEquals(0xFFFFFF01, c.read32(0x20), "I/O BAR of 256 bytes");
        write32(c, 0x10, 0xFEBF_1234);
        assertEquals(0xFEBF_1000, c.read32(0x10), "the address keeps only the bits above the size");
        write32(c, 0x14, -1);
        assertEquals(0, c.read32(0x14), "an absent BAR stays zero");
    }

    @Test
    void shouldKeepReadOnlyBitsAndClearWriteOneToClearBits() {
        PciConfigSpace c = sample();
        write32(c, 0x00, 0x12345678);
        assertEquals(0x00024e58, c.read32(0x00), "IDs are read-only");
        c.setByDevice(PciConfigSpace.STATUS + 1, 0x80 | 0x02); // bit 15 detected parity error (W1C); bit 9 DEVSEL timing (read-only)
        write32(c, PciConfigSpace.COMMAND, 0xFFFF_FFFF);
        assertEquals(0x0547, c.read16(PciConfigSpace.COMMAND), "only defined command bits are writable");
        assertEquals(0x0200, c.read16(PciConfigSpace.STATUS) & 0x8200, "writing ones cleared bit 15 (W1C) and kept bit 9 (read-only)");
        c.reset();
        assertEquals(0, c.read16(PciConfigSpace.COMMAND));
    }

    @Test
    void shouldLinkCapabilitiesIntoAListAGuestCanWalk() {
        PciConfigSpace c = sample();
        int pm = c.addCapability(new PciCapability.PowerManagement());
        int msix = c.addCapability(new PciCapability.MsiX(4, 0, 0x800, 0, 0xC00));
        int vendor = c.addCapability(new PciCapability.VendorSpecific(new byte[] {1, 2, 3, 4, 5}));
        int pcie = c.addCapability(new PciCapability.PciExpress(0));
        assertEquals(0x10, c.read16(PciConfigSpace.STATUS) & 0x10);
        List<Integer> walked = new ArrayList<>();
        for (int at = c.read16(0x34) & 0xFF; at != 0; at = (c.read16(at) >> 8) & 0xFC) {
            walked.add(at);
        }
        assertEquals(List.of(pm, msix, vendor, pcie), walked);
        assertEquals(0x11, c.read16(msix) & 0xFF);
        assertEquals(3, c.read16(msix + 2) & 0x7FF, "table size - 1");
        assertEquals(0x800, c.read32(msix + 4), "table offset, BIR 0");
        write32(c, msix + 2 - 2, 0xFFFF_0000);
        assertEquals(0xC003, c.read16(msix + 2), "only Enable and Function Mask are writable");
        assertEquals(8, c.read16(vendor + 2) & 0xFF, "vendor-specific length");
        write32(c, vendor + 4, 0);
        assertEquals(0x0504, c.read16(vendor + 6) & 0xFFFF, "vendor-specific bytes are read-only");
    }

    @Test
    void shouldRefuseBarsThatAreNotPowersOfTwoOrDoNotFit() {
        PciConfigSpace c = sample();
        assertThrows(IllegalArgumentException.class, () -> c.bar(1, 0x3000, PciConfigSpace.BarType.MEMORY32, false));
        assertThrows(IllegalArgumentException.class, () -> c.bar(5, 0x1000, PciConfigSpace.BarType.MEMORY64, false));
        assertThrows(IllegalArgumentException.class, () -> c.bar(1, 8, PciConfigSpace.BarType.MEMORY32, false));
        assertThrows(IllegalArgumentException.class, () -> new PciCapability.Msi(3));
    }
}
