package dev.outproc.vfio.client;

import dev.outproc.vfio.message.DeviceInfo;
import dev.outproc.vfio.message.IrqInfo;
import dev.outproc.vfio.message.RegionCapabilities;
import dev.outproc.vfio.message.RegionInfo;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Locale;

/**
 * Enumerates any vfio-user server the way {@code lspci -vv} shows a PCI function: IDs, class, command
 * and status, BARs with sizes, flags and sparse mmap areas, the capability list decoded (power
 * management, MSI, MSI-X with table and PBA, PCI Express, vendor-specific), and the IRQ indexes. Reads
 * only: config space through REGION_READ of region 7, everything else from the info commands.
 */
public final class DeviceReport {
    /** PCI region index of the config space ({@code VFIO_PCI_CONFIG_REGION_INDEX}). */
    public static final int CONFIG_REGION = 7;
    private static final String[] REGION_NAMES = {"BAR0", "BAR1", "BAR2", "BAR3", "BAR4", "BAR5", "ROM", "config", "VGA"};
    private static final String[] IRQ_NAMES = {"INTx", "MSI", "MSI-X", "ERR", "REQ"};
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED;

    private DeviceReport() {
    }

    /**
     * Builds the report of a negotiated client's device.
     *
     * @param client a client after {@link VfioUserClient#negotiate}
     * @return the text, one item per line
     * @throws IOException when the server refuses a command
     */
    public static String of(VfioUserClient client) throws IOException {
        StringBuilder out = new StringBuilder();
        VfioUserClient.DeviceInformation info = client.deviceInfo();
        out.append(String.format(Locale.ROOT, "device: flags=0x%x%s%s regions=%d irq-indexes=%d%n", info.flags(),
                (info.flags() & DeviceInfo.FLAG_PCI) != 0 ? " PCI" : "", (info.flags() & DeviceInfo.FLAG_RESET) != 0 ? " RESET" : "",
                info.numRegions(), info.numIrqs()));
        MemorySegment config = null;
        if ((info.flags() & DeviceInfo.FLAG_PCI) != 0 && info.numRegions() > CONFIG_REGION) {
            try (VfioUserClient.Region r = client.regionInfo(CONFIG_REGION)) {
                long size = Math.min(r.sizeBytes(), 4096);
                if (size >= 64) {
                    config = Arena.ofAuto().allocate(size);
                    client.regionRead(CONFIG_REGION, 0, config.asSlice(0, Math.min(size, 256)));
                }
            }
        }
        if (config != null) {
            header(out, config);
        }
        for (int i = 0; i < info.numRegions(); i++) {
            try (VfioUserClient.Region r = client.regionInfo(i)) {
                if (r.sizeBytes() == 0) {
                    continue;
                }
                String name = i < REGION_NAMES.length ? REGION_NAMES[i] : "region" + i;
                out.append(String.format(Locale.ROOT, "region %d (%s): size=0x%x [%s%s%s%s]", i, name, r.sizeBytes(),
                        (r.flags() & RegionInfo.FLAG_READ) != 0 ? "R" : "-", (r.flags() & RegionInfo.FLAG_WRITE) != 0 ? "W" : "-",
                        (r.flags() & RegionInfo.FLAG_MMAP) != 0 ? "M" : "-", (r.flags() & RegionInfo.FLAG_CAPS) != 0 ? "C" : "-"));
                if (config != null && i < 6) {
                    int bar = config.get(U32, 0x10 + 4L * i);
                    out.append((bar & 1) != 0 ? " I/O" : String.format(Locale.ROOT, " memory %s%s",
                            ((bar >> 1) & 3) == 2 ? "64-bit" : "32-bit", (bar & 8) != 0 ? " prefetchable" : ""));
                }
                if ((r.flags() & RegionInfo.FLAG_MMAP) != 0) {
                    out.append(String.format(Locale.ROOT, " mmap-offset=0x%x", r.mmapOffset()));
                }
                out.append(System.lineSeparator());
                RegionCapabilities.Chain caps = r.capabilities();
                if (caps.sparseAreas() != null) {
                    for (RegionCapabilities.SparseArea a : caps.sparseAreas()) {
                        out.append(String.format(Locale.ROOT, "    sparse mmap: 0x%x+0x%x%n", a.offset(), a.size()));
                    }
                }
                if (caps.type() >= 0) {
                    out.append(String.format(Locale.ROOT, "    type: 0x%x subtype 0x%x%n", caps.type(), caps.subtype()));
                }
            }
        }
        if (config != null) {
            capabilities(out, config);
        }
        for (int i = 0; i < info.numIrqs(); i++) {
            VfioUserClient.Irq irq = client.irqInfo(i);
            String name = i < IRQ_NAMES.length ? IRQ_NAMES[i] : "irq" + i;
            out.append(String.format(Locale.ROOT, "irq %d (%s): count=%d%s%s%s%s%n", i, name, irq.count(),
                    (irq.flags() & IrqInfo.FLAG_EVENTFD) != 0 ? " eventfd" : "", (irq.flags() & IrqInfo.FLAG_MASKABLE) != 0 ? " maskable" : "",
                    (irq.flags() & IrqInfo.FLAG_AUTOMASKED) != 0 ? " automasked" : "", (irq.flags() & IrqInfo.FLAG_NORESIZE) != 0 ? " noresize" : ""));
        }
        long migration = client.migrationFlags();
        out.append(migration < 0 ? "migration: not supported" : String.format(Locale.ROOT, "migration: flags=0x%x%s%s%s", migration,
                (migration & 1) != 0 ? " STOP_COPY" : "", (migration & 2) != 0 ? " P2P" : "", (migration & 4) != 0 ? " PRE_COPY" : ""));
        out.append(System.lineSeparator());
        return out.toString();
    }

    private static int u8(MemorySegment c, long at) {
        return Byte.toUnsignedInt(c.get(ValueLayout.JAVA_BYTE, at));
    }

    private static int u16(MemorySegment c, long at) {
        return Short.toUnsignedInt(c.get(U16, at));
    }

    private static void header(StringBuilder out, MemorySegment c) {
        out.append(String.format(Locale.ROOT, "[%04x:%04x] class %06x rev %02x subsystem [%04x:%04x] header-type %02x%n",
                u16(c, 0), u16(c, 2), c.get(U32, 8) >>> 8, u8(c, 8), u16(c, 0x2C), u16(c, 0x2E), u8(c, 0x0E)));
        int cmd = u16(c, 4);
        int status = u16(c, 6);
        out.append(String.format(Locale.ROOT, "Control: I/O%s Mem%s BusMaster%s INTx-%s (0x%04x)%n", pm(cmd, 0), pm(cmd, 1),
                pm(cmd, 2), pm(cmd, 10), cmd));
        out.append(String.format(Locale.ROOT, "Status: Cap%s INTx%s (0x%04x)%n", pm(status, 4), pm(status, 3), status));
        if (u8(c, 0x3D) != 0) {
            out.append(String.format(Locale.ROOT, "Interrupt: pin %c routed to IRQ %d%n", (char) ('A' + u8(c, 0x3D) - 1), u8(c, 0x3C)));
        }
    }

    private static String pm(int value, int bit) {
        return ((value >> bit) & 1) != 0 ? "+" : "-";
    }

    private static void capabilities(StringBuilder out, MemorySegment c) {
        if ((u16(c, 6) & 0x10) == 0) {
            return;
        }
        int at = u8(c, 0x34) & 0xFC;
        for (int n = 0; at >= 0x40 && at < 0xFF && n < 48; n++) {
            int id = u8(c, at);
            String line = switch (id) {
                case 0x01 -> String.format(Locale.ROOT, "Power Management version %d, PMCSR 0x%04x", u16(c, at + 2) & 7, u16(c, at + 4));
                case 0x05 -> {
                    int ctl = u16(c, at + 2);
                    yield String.format(Locale.ROOT, "MSI: Enable%s Count=%d/%d 64bit%s Maskable%s", pm(ctl, 0), 1 << ((ctl >> 4) & 7),
                            1 << ((ctl >> 1) & 7), pm(ctl, 7), pm(ctl, 8));
                }
                case 0x09 -> String.format(Locale.ROOT, "Vendor Specific Information: Len=%02x", u8(c, at + 2));
                case 0x10 -> String.format(Locale.ROOT, "Express v%d type %d", u16(c, at + 2) & 0xF, (u16(c, at + 2) >> 4) & 0xF);
                case 0x11 -> {
                    int ctl = u16(c, at + 2);
                    int table = c.get(U32, at + 4L);
                    int pba = c.get(U32, at + 8L);
                    yield String.format(Locale.ROOT, "MSI-X: Enable%s Count=%d Masked%s Vector table: BAR=%d offset=%08x PBA: BAR=%d offset=%08x",
                            pm(ctl, 15), (ctl & 0x7FF) + 1, pm(ctl, 14), table & 7, table & ~7, pba & 7, pba & ~7);
                }
                default -> String.format(Locale.ROOT, "capability 0x%02x", id);
            };
            out.append(String.format(Locale.ROOT, "Capabilities: [%02x] %s%n", at, line));
            at = u8(c, at + 1) & 0xFC;
        }
    }
}
