package dev.outproc.vfio.message;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every golden vector decodes field by field to its comments, rebuilds byte for byte from them, and passes
 * (or, for the retired command, fails) the syntax layer in its direction.
 */
class GoldenVectorsTest {
    /** Field tables by struct name; two layouts that are no Java class of ours are described here. */
    private static final Map<String, List<WireField>> STRUCTS = new HashMap<>();

    static {
        STRUCTS.put("VfioUserHeader", VfioUserHeader.FIELDS);
        STRUCTS.put("Version", Version.FIELDS);
        STRUCTS.put("DmaMap", DmaMap.FIELDS);
        STRUCTS.put("DmaUnmap", DmaUnmap.FIELDS);
        STRUCTS.put("DeviceInfo", DeviceInfo.FIELDS);
        STRUCTS.put("RegionInfo", RegionInfo.FIELDS);
        STRUCTS.put("InfoCapHeader", InfoCapHeader.FIELDS);
        STRUCTS.put("SparseMmapCap", SparseMmapCap.FIELDS);
        STRUCTS.put("SparseMmapArea", SparseMmapArea.FIELDS);
        STRUCTS.put("RegionTypeCap", RegionTypeCap.FIELDS);
        STRUCTS.put("RegionIoFds", RegionIoFds.FIELDS);
        STRUCTS.put("SubRegionIoFd", SubRegionIoFd.FIELDS);
        STRUCTS.put("IrqInfo", IrqInfo.FIELDS);
        STRUCTS.put("IrqSet", IrqSet.FIELDS);
        STRUCTS.put("RegionAccess", RegionAccess.FIELDS);
        STRUCTS.put("DmaAccess", DmaAccess.FIELDS);
        STRUCTS.put("RegionWriteMulti", RegionWriteMulti.FIELDS);
        STRUCTS.put("RegionWriteMultiEntry", RegionWriteMultiEntry.FIELDS);
        STRUCTS.put("DeviceFeature", DeviceFeature.FIELDS);
        STRUCTS.put("MigrationFeature", MigrationFeature.FIELDS);
        STRUCTS.put("MigDeviceState", MigDeviceState.FIELDS);
        STRUCTS.put("DmaLoggingControl", DmaLoggingControl.FIELDS);
        STRUCTS.put("DmaLoggingRange", DmaLoggingRange.FIELDS);
        STRUCTS.put("DmaLoggingReport", DmaLoggingReport.FIELDS);
        STRUCTS.put("MigData", MigData.FIELDS);
        // QEMU's unpacked VFIOUserDMARW after the header, and the spec's 12-byte DMA_WRITE reply.
        STRUCTS.put("QemuDmaRw", List.of(new WireField("offset", 0, 8), new WireField("count", 8, 4)));
        STRUCTS.put("DmaWriteReplySpec", List.of(new WireField("count", 8, 4)));
    }

    static List<String> vectors() {
        return GoldenVector.index();
    }

    @Test
    void shouldHaveACommandAndAReplyVectorForEveryCommand() {
        Set<String> commands = new TreeSet<>();
        Set<String> replies = new TreeSet<>();
        for (String file : vectors()) {
            GoldenVector v = GoldenVector.load(file);
            (v.reply() ? replies : commands).add(v.command());
        }
        for (VfioUserCommand c : VfioUserCommand.values()) {
            assertTrue(commands.contains(c.name()), "no command vector for " + c);
            if (!c.isRetired()) {
                assertTrue(replies.contains(c.name()), "no reply vector for " + c);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("vectors")
    void shouldDecodeEveryCommentedField(String file) {
        GoldenVector v = GoldenVector.load(file);
        MemorySegment m = MemorySegment.ofArray(v.bytes());
        Map<String, Long> bases = new HashMap<>();
        for (GoldenVector.Field f : v.fields()) {
            List<WireField> table = STRUCTS.get(f.struct());
            assertNotNull(table, file + ": no table for " + f.struct());
            WireField wf = table.stream().filter(w -> w.name().equals(f.name())).findFirst()
                    .orElseThrow(() -> new AssertionError(file + ": no field " + f.struct() + "." + f.name()));
            long base = f.position() - wf.offset();
            Long previous = bases.putIfAbsent(f.instance(), base);
            assertEquals(previous == null ? base : previous, base, file + ": " + f.instance() + " fields disagree on where it starts");
            assertEquals(f.value(), wf.read(m, base), file + ": " + f.instance() + "." + f.name());
        }
        VfioUserHeader.Decoder h = new VfioUserHeader.Decoder().wrap(m, 0);
        assertEquals(v.bytes().length, h.size(), file + ": header size");
        assertEquals(v.reply(), h.isReply(), file + ": type");
    }

    @ParameterizedTest
    @MethodSource("vectors")
    void shouldRebuildEveryVectorFromItsFields(String file) {
        GoldenVector v = GoldenVector.load(file);
        byte[] rebuilt = v.bytes().clone();
        MemorySegment m = MemorySegment.ofArray(rebuilt);
        Map<String, Long> bases = new HashMap<>();
        for (GoldenVector.Field f : v.fields()) {
            WireField wf = STRUCTS.get(f.struct()).stream().filter(w -> w.name().equals(f.name())).findFirst().orElseThrow();
            bases.putIfAbsent(f.instance(), (long) f.position() - wf.offset());
            m.asSlice(f.position(), wf.sizeBytes()).fill((byte) 0x5A);
            wf.write(m, bases.get(f.instance()), f.value());
        }
        assertArrayEquals(v.bytes(), rebuilt, file);
    }

    @ParameterizedTest
    @MethodSource("vectors")
    void shouldPassTheSyntaxLayerInItsDirection(String file) throws Exception {
        GoldenVector v = GoldenVector.load(file);
        MemorySegment m = MemorySegment.ofArray(v.bytes());
        MessageValidator.checkHeader(m, 0, 1 << 21);
        if (v.reply()) {
            VfioUserCommand answered = VfioUserCommand.valueOf(v.command().equals("99") ? "VERSION" : v.command());
            if (v.command().equals("99")) {
                return; // An error reply for an unknown command answers no command a client sent.
            }
            MessageValidator.checkReply(m, 0, answered);
            return;
        }
        VfioUserCommand expected = VfioUserCommand.valueOf(v.command());
        if (expected.isRetired()) {
            VfioUserProtocolException e = assertThrows(VfioUserProtocolException.class, () -> MessageValidator.checkCommand(m, 0,
                    v.fds(), expected.direction(), 1 << 20, 16));
            assertEquals(dev.outproc.core.fd.Errno.ENOTSUP, e.errno());
            return;
        }
        assertEquals(expected, MessageValidator.checkCommand(m, 0, v.fds(), expected.direction(), 1 << 20, 16), file);
    }

    @Test
    void shouldParseBothPeersVersionJson() throws Exception {
        for (String file : List.of("01-version-command-qemu.hex", "01-version-reply-libvfio-user.hex")) {
            GoldenVector v = GoldenVector.load(file);
            MemorySegment m = MemorySegment.ofArray(v.bytes());
            Version.Decoder d = new Version.Decoder().wrap(m, VfioUserHeader.ENCODED_LENGTH);
            Capabilities caps = Capabilities.parse(m, d.dataOffset(), m.byteSize() - d.dataOffset());
            assertTrue(caps.has(Capabilities.KEY_MIGRATION), file);
            assertEquals(4096, caps.migrationPgsize(), file);
            assertEquals(1 << 20, caps.maxDataXferSize(), file);
        }
    }

    @Test
    void shouldReadTheSparseAndTypeCapabilitiesOfTheRegionInfoVector() throws Exception {
        GoldenVector v = GoldenVector.load("05-device-get-region-info-reply-sparse.hex");
        MemorySegment m = MemorySegment.ofArray(v.bytes());
        RegionCapabilities.Chain chain = RegionCapabilities.read(m, VfioUserHeader.ENCODED_LENGTH,
                m.byteSize() - VfioUserHeader.ENCODED_LENGTH);
        assertEquals(List.of(new RegionCapabilities.SparseArea(0x1000, 0x1000), new RegionCapabilities.SparseArea(0x3000, 0x1000)),
                chain.sparseAreas());
        assertEquals(0x80000000L, chain.type());
        assertEquals(1, chain.subtype());
    }
}
