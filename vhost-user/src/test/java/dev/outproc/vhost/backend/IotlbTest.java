package dev.outproc.vhost.backend;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestMemoryException;
import dev.outproc.core.memory.GuestRegion;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.LongStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class IotlbTest {
    @Test
    void updatesShouldReplaceOverlapsAndInvalidationsRemoveTouchedEntries() throws Exception {
        Iotlb tlb = new Iotlb();
        tlb.update(0x1000, 0x1000, 0x10_0000, Iotlb.ACCESS_RW);
        tlb.update(0x3000, 0x2000, 0x20_0000, Iotlb.ACCESS_RO);
        tlb.update(0x1800, 0x2000, 0x30_0000, Iotlb.ACCESS_RW); // overlaps both
        assertEquals(List.of(new Iotlb.Entry(0x1800, 0x2000, 0x30_0000, Iotlb.ACCESS_RW)), tlb.entries());
        tlb.update(0x8000, 0x1000, 0x40_0000, Iotlb.ACCESS_WO);
        tlb.invalidate(0x37FF, 1);
        assertEquals(List.of(new Iotlb.Entry(0x8000, 0x1000, 0x40_0000, Iotlb.ACCESS_WO)), tlb.entries());
        tlb.invalidate(0x9000, 0x1000);
        assertEquals(1, tlb.size(), "an adjacent range is not touched");
        assertThrows(BackendException.class, () -> tlb.update(-4096, 0x2000, 0, Iotlb.ACCESS_RW));
        assertThrows(BackendException.class, () -> tlb.update(0, 0, 0, Iotlb.ACCESS_RW));
        assertThrows(BackendException.class, () -> tlb.update(0, 0x1000, 0, 4));
    }

    @Test
    void tableShouldBeBounded() throws Exception {
        Iotlb tlb = new Iotlb();
        for (int i = 0; i < Iotlb.MAX_ENTRIES; i++) {
            tlb.update(i * 0x1000L, 0x1000, 0, Iotlb.ACCESS_RO);
        }
        assertThrows(BackendException.class, () -> tlb.update(0x1_0000_0000L, 0x1000, 0, Iotlb.ACCESS_RO));
    }

    static LongStream seeds() {
        long base = Long.getLong("outproc.seed", System.nanoTime());
        return LongStream.range(0, 10).map(i -> base + i);
    }

    /** Every byte reached through the IOVA space is the byte at the mapped front-end address. */
    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void iovaSpaceShouldReachTheMappedBytes(long seed) throws Exception {
        SplittableRandom random = new SplittableRandom(seed);
        List<GuestRegion> regions = new ArrayList<>();
        regions.add(GuestRegion.allocate(0, 0x40000, 0x7f00_0000_0000L));
        regions.add(GuestRegion.allocate(0x100000, 0x40000, 0x7f00_0004_0000L)); // user-contiguous with the first
        try {
            GuestMemory memory = GuestMemory.of(regions);
            for (GuestRegion r : regions) {
                for (long i = 0; i < r.sizeBytes(); i += 8) {
                    r.segment().set(ValueLayout.JAVA_LONG, i, r.userAddr() + i);
                }
            }
            Iotlb tlb = new Iotlb();
            for (int i = 0; i < 20; i++) {
                long size = (1 + random.nextInt(64)) * 0x1000L;
                long uaddr = 0x7f00_0000_0000L + random.nextLong(0, 0x80000 - size) / 8 * 8;
                tlb.update(random.nextLong(0, 1L << 40) / 0x1000 * 0x1000, size, uaddr, Iotlb.ACCESS_RW);
            }
            GuestMemory iova = tlb.build(memory);
            for (Iotlb.Entry e : tlb.entries()) {
                for (int probe = 0; probe < 20; probe++) {
                    long offset = random.nextLong(0, e.size() / 8) * 8;
                    long expected = e.userAddr() + offset;
                    long got = read(iova, e.iova() + offset);
                    assertEquals(expected, got, "seed=" + seed + " entry=" + e + " offset=" + offset);
                }
            }
            assertThrows(GuestMemoryException.class, () -> iova.slice(1L << 41, 8), "unmapped IOVA misses");
            assertTrue(iova.regionCount() >= tlb.size());
        } finally {
            regions.forEach(GuestRegion::close);
        }
    }

    private static long read(GuestMemory memory, long address) throws GuestMemoryException {
        byte[] b = new byte[8];
        memory.read(address, java.lang.foreign.MemorySegment.ofArray(b));
        return java.lang.foreign.MemorySegment.ofArray(b).get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
    }
}
