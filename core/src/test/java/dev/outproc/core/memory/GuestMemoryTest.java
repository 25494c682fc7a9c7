package dev.outproc.core.memory;

import dev.outproc.core.fd.OwnedFd;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.LongStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GuestMemoryTest {
    private final List<AutoCloseable> closeMe = new ArrayList<>();

    @AfterEach
    void closeAll() throws Exception {
        for (AutoCloseable c : closeMe) {
            c.close();
        }
    }

    private GuestRegion region(long gpa, long size, long uaddr) throws Exception {
        GuestRegion r = GuestRegion.allocate(gpa, size, uaddr);
        closeMe.add(r);
        return r;
    }

    @Test
    void memfdMappedTwiceShouldShareBytes() throws Exception {
        try (OwnedFd fd = MemFd.create("twice", 65536);
             SharedMapping a = SharedMapping.map(fd.get(), 0, 65536, true);
             SharedMapping b = SharedMapping.map(fd.get(), 4096, 8192, false)) {
            a.segment().set(ValueLayout.JAVA_LONG, 4096 + 16, 0x1122334455667788L);
            assertEquals(0x1122334455667788L, b.segment().get(ValueLayout.JAVA_LONG, 16));
            assertTrue(b.segment().isReadOnly());
        }
    }

    @Test
    void shouldMapAtAnUnalignedOffset() throws Exception {
        try (OwnedFd fd = MemFd.create("unaligned", 3 * 4096);
             SharedMapping whole = SharedMapping.map(fd.get(), 0, 3 * 4096, true);
             SharedMapping part = SharedMapping.map(fd.get(), 4096 + 100, 200, true)) {
            whole.segment().set(ValueLayout.JAVA_BYTE, 4096 + 100, (byte) 42);
            assertEquals(42, part.segment().get(ValueLayout.JAVA_BYTE, 0));
            assertEquals(200, part.sizeBytes());
        }
    }

    @Test
    void accessAfterUnmapShouldThrowNotCrash() throws Exception {
        GuestRegion r = GuestRegion.allocate(0, 1 << 20, 0x7f0000000000L);
        MemorySegment seg = r.segment();
        CountDownLatch reading = new CountDownLatch(1);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread reader = Thread.ofPlatform().start(() -> {
            long sum = 0;
            try {
                while (true) {
                    for (long i = 0; i < seg.byteSize(); i += 4096) {
                        sum += seg.get(ValueLayout.JAVA_BYTE, i);
                    }
                    reading.countDown();
                }
            } catch (Throwable t) {
                failure.set(t);
            }
            if (sum == 42) {
                System.out.print(""); // keep sum alive
            }
        });
        reading.await();
        r.close();
        reader.join(10_000);
        assertFalse(reader.isAlive(), "reader must stop with an exception");
        assertInstanceOf(IllegalStateException.class, failure.get());
        assertFalse(r.isMapped());
        assertThrows(IllegalStateException.class, () -> seg.get(ValueLayout.JAVA_BYTE, 0));
    }

    @Test
    void shouldRefuseOverlappingRegions() throws Exception {
        GuestRegion a = region(0x0, 0x10000, 0x100000);
        GuestRegion gpaOverlap = region(0xF000, 0x2000, 0x900000);
        GuestRegion userOverlap = region(0x40000, 0x1000, 0x10F000);
        GuestMemoryException e1 = assertThrows(GuestMemoryException.class, () -> GuestMemory.of(List.of(a, gpaOverlap)));
        assertTrue(e1.getMessage().contains("guest-physical"), e1.getMessage());
        GuestMemoryException e2 = assertThrows(GuestMemoryException.class, () -> GuestMemory.of(List.of(a, userOverlap)));
        assertTrue(e2.getMessage().contains("user address"), e2.getMessage());
        GuestMemory ok = GuestMemory.of(List.of(a));
        assertThrows(GuestMemoryException.class, () -> ok.with(gpaOverlap));
    }

    @Test
    void shouldRefuseRegionsThatWrap() {
        GuestMemoryException e = assertThrows(GuestMemoryException.class,
                () -> GuestRegion.validate(0xFFFF_FFFF_FFFF_F000L, 0x2000, 0, 0));
        assertTrue(e.getMessage().contains("wraps"), e.getMessage());
        assertThrows(GuestMemoryException.class, () -> GuestRegion.validate(0, 0x2000, -4096, 0));
        assertThrows(GuestMemoryException.class, () -> GuestRegion.validate(0, 0, 0, 0));
    }

    @Test
    void shouldRefuseRangesCrossingRegionsButWalkThemInPieces() throws Exception {
        GuestRegion low = region(0x0, 0x2000, 0x10000);
        GuestRegion high = region(0x2000, 0x2000, 0x80000);
        GuestMemory mem = GuestMemory.of(List.of(high, low));
        GuestMemoryException e = assertThrows(GuestMemoryException.class, () -> mem.slice(0x1F00, 0x200));
        assertTrue(e.getMessage().contains("crosses"), e.getMessage());
        byte[] data = new byte[0x200];
        new SplittableRandom(7).nextBytes(data);
        mem.write(0x1F00, MemorySegment.ofArray(data));
        byte[] back = new byte[0x200];
        mem.read(0x1F00, MemorySegment.ofArray(back));
        assertArrayEquals(data, back);
        assertEquals(data[0x100], high.segment().get(ValueLayout.JAVA_BYTE, 0));
        List<Long> sizes = new ArrayList<>();
        mem.forEachPiece(0x1F00, 0x200, (offset, piece) -> sizes.add(piece.byteSize()));
        assertEquals(List.of(0x100L, 0x100L), sizes);
        assertThrows(GuestMemoryException.class, () -> mem.write(0x3F00, MemorySegment.ofArray(data)));
        assertThrows(GuestMemoryException.class, () -> mem.slice(-16, 32));
    }

    @Test
    void viewsShouldShowTheBackingBytesAtTheirOwnAddress() throws Exception {
        GuestRegion ram = region(0x10_0000, 0x10000, 0x7f00_0000_0000L);
        GuestRegion window = GuestRegion.view(0xFEE0_0000L, 0x2000, ram, 0x3000, true);
        GuestRegion readOnly = GuestRegion.view(0xFEF0_0000L, 0x1000, ram, 0x8000, false);
        GuestMemory iova = GuestMemory.of(List.of(window, readOnly));
        iova.slice(0xFEE0_0010L, 8).set(ValueLayout.JAVA_LONG_UNALIGNED, 0, 0x0123456789ABCDEFL);
        assertEquals(0x0123456789ABCDEFL, ram.segment().get(ValueLayout.JAVA_LONG_UNALIGNED, 0x3010));
        assertTrue(iova.slice(0xFEF0_0000L, 16).isReadOnly());
        assertThrows(GuestMemoryException.class, () -> GuestRegion.view(0, 0x2000, ram, 0xF000, true), "past the backing end");
        assertThrows(GuestMemoryException.class, () -> GuestRegion.view(-4096, 0x2000, ram, 0, true), "wraps");
        window.close(); // a view owns nothing
        assertTrue(ram.isMapped());
        ram.close();
        assertFalse(window.isMapped(), "a view dies with its backing mapping");
    }

    @Test
    void viewsShouldCarryTheirAccessAndCopiesRespectIt() throws Exception {
        GuestRegion ram = region(0x10_0000, 0x10000, 0x7f00_0000_0000L);
        GuestRegion writeOnly = GuestRegion.view(0xFEE0_0000L, 0x1000, ram, 0, false, true);
        GuestRegion readOnly = GuestRegion.view(0xFEE0_1000L, 0x1000, ram, 0x1000, true, false);
        GuestRegion readWrite = GuestRegion.view(0xFEE0_2000L, 0x1000, ram, 0x2000, true, true);
        assertFalse(writeOnly.readable());
        assertTrue(writeOnly.writable());
        assertTrue(readOnly.readable());
        assertFalse(readOnly.writable());
        assertTrue(ram.readable() && ram.writable(), "a mapped region allows both");
        assertTrue(writeOnly.toString().contains("write-only"), writeOnly.toString());
        assertThrows(GuestMemoryException.class, () -> GuestRegion.view(0, 0x1000, ram, 0, false, false), "no access at all");
        GuestMemory iova = GuestMemory.of(List.of(writeOnly, readOnly, readWrite));
        MemorySegment eight = MemorySegment.ofArray(new byte[8]);

        iova.write(0xFEE0_0000L, MemorySegment.ofArray(new long[] {0x1122334455667788L}));
        assertEquals(0x1122334455667788L, ram.segment().get(ValueLayout.JAVA_LONG_UNALIGNED, 0), "written through WO");
        GuestMemoryException read = assertThrows(GuestMemoryException.class, () -> iova.read(0xFEE0_0000L, eight));
        assertTrue(read.getMessage().contains("not readable") && read.getMessage().contains("write-only"), read.getMessage());
        assertEquals(0L, eight.get(ValueLayout.JAVA_LONG_UNALIGNED, 0), "nothing copied");
        // A range that starts readable and runs into the write-only view is refused before anything is copied.
        GuestRegion ram2 = region(0x20_0000, 0x10000, 0x7f10_0000_0000L);
        GuestMemory mixed = GuestMemory.of(List.of(GuestRegion.view(0x1000, 0x1000, ram2, 0, true, true),
                GuestRegion.view(0x2000, 0x1000, ram2, 0x1000, false, true)));
        assertThrows(GuestMemoryException.class, () -> mixed.read(0x1FF8, MemorySegment.ofArray(new byte[16])));

        iova.read(0xFEE0_1000L, eight);
        GuestMemoryException write = assertThrows(GuestMemoryException.class, () -> iova.write(0xFEE0_1000L, eight));
        assertTrue(write.getMessage().contains("not writable"), write.getMessage());
        iova.read(0xFEE0_2000L, eight);
        iova.write(0xFEE0_2000L, eight);
        ram2.close();
        ram.close();
    }

    @Test
    void holderShouldUnmapRegionsThatLeave() throws Exception {
        GuestRegion a = GuestRegion.allocate(0, 4096, 0x1000);
        GuestRegion b = GuestRegion.allocate(0x10000, 4096, 0x20000);
        try (GuestMemoryHolder holder = new GuestMemoryHolder()) {
            holder.publish(GuestMemory.of(List.of(a, b)));
            holder.publish(holder.current().without(a));
            assertFalse(a.isMapped());
            assertTrue(b.isMapped());
            assertEquals(1, holder.current().regionCount());
        }
        assertFalse(b.isMapped());
    }

    static LongStream seeds() {
        long base = Long.getLong("outproc.seed", System.nanoTime());
        return LongStream.range(0, 20).map(i -> base + i);
    }

    /** Translation property: against a reference model of random, non-overlapping region tables. */
    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void translationShouldMatchReferenceModel(long seed) throws Exception {
        SplittableRandom random = new SplittableRandom(seed);
        int count = 1 + random.nextInt(8);
        long[] gpa = new long[count];
        long[] uaddr = new long[count];
        long[] size = new long[count];
        List<GuestRegion> regions = new ArrayList<>();
        long nextGpa = random.nextLong(0, 1L << 20) * 4096;
        for (int i = 0; i < count; i++) {
            size[i] = (1 + random.nextInt(16)) * 4096L;
            gpa[i] = nextGpa;
            nextGpa += size[i] + (random.nextBoolean() ? 0 : random.nextInt(1, 64) * 4096L);
        }
        // Lay out user addresses in a shuffled order of the regions, so the two orders differ.
        int[] order = new int[count];
        for (int i = 0; i < count; i++) {
            order[i] = i;
        }
        for (int i = count - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        long nextUser = 0x7f00_0000_0000L + random.nextLong(0, 1L << 20) * 4096;
        for (int k = 0; k < count; k++) {
            int i = order[k];
            uaddr[i] = nextUser;
            nextUser += size[i] + random.nextInt(0, 64) * 4096L;
        }
        for (int i = 0; i < count; i++) {
            regions.add(region(gpa[i], size[i], uaddr[i]));
        }
        GuestMemory mem = GuestMemory.of(regions);
        for (int probe = 0; probe < 2000; probe++) {
            long address = random.nextLong(Math.max(1, gpa[0] - 8192), nextGpa + 8192);
            long length = random.nextInt(0, 9000);
            int expected = -1;
            for (int i = 0; i < count; i++) {
                if (address >= gpa[i] && address + length <= gpa[i] + size[i]) {
                    expected = i;
                }
            }
            int actual = mem.regionIndexOfGpa(address, length);
            String context = "seed=" + seed + " gpa=0x" + Long.toHexString(address) + " len=" + length;
            if (expected < 0) {
                assertEquals(-1, actual, context);
                final long a = address;
                final long l = length;
                assertThrows(GuestMemoryException.class, () -> mem.slice(a, l), context);
            } else {
                assertEquals(gpa[expected], mem.region(actual).guestPhysAddr(), context);
                long offset = address - gpa[expected];
                long user = uaddr[expected] + offset;
                assertEquals(address, mem.userToGpa(user, length), context);
                MemorySegment viaGpa = mem.slice(address, length);
                MemorySegment viaUser = mem.sliceUser(user, length);
                assertEquals(viaGpa.address(), viaUser.address(), context);
                assertEquals(length, viaGpa.byteSize(), context);
            }
        }
    }
}
