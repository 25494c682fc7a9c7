package dev.outproc.core.virtqueue;

import dev.outproc.core.memory.DirtyLog;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtqueue.VirtqueueException.Reason;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The device-side contract beyond pop/addUsed: observer, dirty log, resubmit, state, memory swaps, misuse. */
class DeviceQueueContractTest {
    private static final long FEATURES = VirtioFeature.INDIRECT_DESC.mask() | VirtioFeature.EVENT_IDX.mask();

    private static int post(DriverQueue driver, long gpa, int readable, int writable) {
        driver.add(gpa, readable, false);
        driver.add(gpa + 4096, writable, true);
        int id = driver.post(false);
        driver.publish();
        return id;
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void shouldReportPopsCompletionsAndPublicationsToTheObserver(boolean packed) throws Exception {
        try (GuestRam ram = new GuestRam(1 << 20)) {
            Rig rig = Rig.create(ram, packed, 8, FEATURES, 0);
            long data = ram.allocator.allocate(64 * 1024, 4096);
            List<String> events = new ArrayList<>();
            rig.device().setObserver(new QueueObserver() {
                @Override
                public void chainPopped(int id) {
                    events.add("pop " + id);
                }

                @Override
                public void chainCompleted(int id, long writtenBytes) {
                    events.add("done " + id + " " + writtenBytes);
                }

                @Override
                public void usedIndexPublished(int nextUsed, boolean wrap) {
                    events.add("publish " + nextUsed);
                }
            });
            int a = post(rig.driver(), data, 10, 20);
            int b = post(rig.driver(), data + 8192, 10, 30);
            DescriptorChain ca = rig.device().pop();
            DescriptorChain cb = rig.device().pop();
            assertEquals(2, ca.ringDescriptors());
            assertEquals(packed ? 2 : b, cb.ringPosition());
            rig.device().addUsedBatch(new DescriptorChain[] {cb, ca}, new long[] {30, 5}, 2);
            // Split: used index 2; packed: 2 chains of 2 descriptors = slot 4.
            int next = packed ? 4 : 2;
            assertEquals(List.of("pop " + a, "pop " + b, "done " + b + " 30", "done " + a + " 5", "publish " + next), events);
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void shouldMarkWrittenBytesAndRingDirty(boolean packed) throws Exception {
        try (GuestRam ram = new GuestRam(1 << 20); Arena arena = Arena.ofConfined()) {
            Rig rig = Rig.create(ram, packed, 8, FEATURES, 0);
            long data = ram.allocator.allocate(64 * 1024, 4096);
            DirtyLog log = DirtyLog.over(arena.allocate(DirtyLog.bitmapBytesFor(GuestRam.BASE + (1 << 20), 4096), 8), 4096);
            QueueConfig c = rig.driver().config();
            long ringLogGpa = packed ? c.descAddr() : c.deviceAddr();
            rig.device().setDirtyLog(log, ringLogGpa);
            rig.driver().add(data, 100, false);
            rig.driver().add(data + 4096, 4096, true);
            rig.driver().add(data + 3 * 4096, 4096, true);
            rig.driver().post(false);
            rig.driver().publish();
            DescriptorChain chain = rig.device().pop();
            rig.device().addUsed(chain, 4097);
            List<Long> pages = new ArrayList<>();
            log.readAndClear(pages::add);
            long ringPage = ringLogGpa / 4096;
            long first = (data + 4096) / 4096;
            // Written: all of the first writable page and one byte of the second writable buffer; not the readable page.
            assertEquals(List.of(ringPage, first, first + 2), pages.stream().sorted().distinct().toList());
            assertFalse(pages.contains(data / 4096));
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void shouldMarkOnlyTheBuffersWhenTheRingIsNotLogged(boolean packed) throws Exception {
        try (GuestRam ram = new GuestRam(1 << 20); Arena arena = Arena.ofConfined()) {
            Rig rig = Rig.create(ram, packed, 8, FEATURES, 0);
            long data = ram.allocator.allocate(64 * 1024, 4096);
            DirtyLog log = DirtyLog.over(arena.allocate(DirtyLog.bitmapBytesFor(GuestRam.BASE + (1 << 20), 4096), 8), 4096);
            rig.device().setDirtyLog(log, DeviceQueue.NO_RING_LOG);
            rig.driver().add(data, 100, false);
            rig.driver().add(data + 4096, 4096, true);
            rig.driver().post(false);
            rig.driver().publish();
            rig.device().addUsed(rig.device().pop(), 10);
            List<Long> pages = new ArrayList<>();
            log.readAndClear(pages::add);
            // The written buffer's page only: no ring page, and nothing at the bottom of the address space.
            assertEquals(List.of((data + 4096) / 4096), pages.stream().sorted().distinct().toList());
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void shouldResubmitInFlightChainsFirst(boolean packed) throws Exception {
        try (GuestRam ram = new GuestRam(1 << 20)) {
            Rig rig = Rig.create(ram, packed, 8, FEATURES, 0);
            long data = ram.allocator.allocate(64 * 1024, 4096);
            int a = post(rig.driver(), data, 11, 20);
            int b = post(rig.driver(), data + 8192, 12, 20);
            int c = post(rig.driver(), data + 16384, 13, 20);
            DeviceQueue device = rig.device();
            device.pop();
            DescriptorChain cb = device.pop();
            device.pop();
            device.addUsed(cb, 1);
            assertArrayEquals(new int[] {a, c}, device.inFlightIds());
            int[] inFlight = device.inFlightIds();
            if (!packed) {
                // Split: a new queue object (a restarted back-end) rebuilds the chains from the table.
                QueueState state = device.exportState();
                device = new SplitQueue("restarted");
                device.importState(rig.driver().config(), state, ram.memory);
            }
            device.resubmit(new int[] {inFlight[1], inFlight[0]});
            DescriptorChain first = device.pop();
            DescriptorChain second = device.pop();
            assertEquals(c, first.id());
            assertEquals(13, first.totalReadable());
            assertEquals(a, second.id());
            assertEquals(11, second.totalReadable());
            assertNull(device.pop());
            device.addUsed(first, 3);
            device.addUsed(second, 4);
            assertEquals(0, device.inFlightCount());
            List<Long> reaped = new ArrayList<>();
            long u;
            while ((u = rig.driver().pollUsed()) != DriverQueue.NONE) {
                reaped.add(u);
            }
            assertEquals(List.of(((long) b << 32) | 1, ((long) c << 32) | 3, ((long) a << 32) | 4), reaped);
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void shouldKeepWorkingAfterAMemorySwapAndBreakWhenTheRingVanishes(boolean packed) throws Exception {
        try (GuestRam ram = new GuestRam(1 << 20);
             GuestRegion other = GuestRegion.allocate(0x4000_0000L, 1 << 20, 0x7e00_0000_0000L)) {
            Rig rig = Rig.create(ram, packed, 8, FEATURES, 0);
            long data = ram.allocator.allocate(64 * 1024, 4096);
            GuestMemory bigger = ram.memory.with(other);
            rig.device().setMemory(bigger);
            rig.driver().add(0x4000_0000L, 64, false);
            rig.driver().post(false);
            rig.driver().publish();
            DescriptorChain chain = rig.device().pop();
            assertEquals(0x4000_0000L, chain.address(0));
            rig.device().addUsed(chain, 0);
            post(rig.driver(), data, 1, 1);
            VirtqueueException e = assertThrows(VirtqueueException.class,
                    () -> rig.device().setMemory(GuestMemory.of(List.of(other))));
            assertEquals(Reason.RING_OUTSIDE_MEMORY, e.reason());
            assertTrue(rig.device().isBroken());
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void shouldTranslateUnmappedMemoryIntoATypedError(boolean packed) throws Exception {
        GuestRam ram = new GuestRam(1 << 20);
        Rig rig = Rig.create(ram, packed, 8, FEATURES, 0);
        long data = ram.allocator.allocate(64 * 1024, 4096);
        post(rig.driver(), data, 16, 16);
        DescriptorChain chain = rig.device().pop();
        ram.close();
        MemorySegment out = MemorySegment.ofArray(new byte[16]);
        assertEquals(Reason.MEMORY_UNMAPPED, assertThrows(VirtqueueException.class,
                () -> chain.readReadable(0, out, 0, 16)).reason());
        assertEquals(Reason.MEMORY_UNMAPPED, assertThrows(VirtqueueException.class,
                () -> rig.device().addUsed(chain, 16)).reason());
        assertEquals(Reason.BROKEN, assertThrows(VirtqueueException.class, () -> rig.device().pop()).reason());
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void shouldRefuseMisuseOfChains(boolean packed) throws Exception {
        try (GuestRam ram = new GuestRam(1 << 20)) {
            Rig rig = Rig.create(ram, packed, 8, FEATURES | VirtioFeature.IN_ORDER.mask(), 0);
            long data = ram.allocator.allocate(64 * 1024, 4096);
            post(rig.driver(), data, 16, 16);
            post(rig.driver(), data + 8192, 16, 16);
            DescriptorChain first = rig.device().pop();
            DescriptorChain second = rig.device().pop();
            MemorySegment buf = MemorySegment.ofArray(new byte[64]);
            assertEquals(Reason.BUFFER_TOO_SHORT, assertThrows(VirtqueueException.class,
                    () -> first.readReadable(8, buf, 0, 9)).reason());
            assertEquals(Reason.BUFFER_TOO_SHORT, assertThrows(VirtqueueException.class,
                    () -> first.writeWritable(0, buf, 0, 17)).reason());
            assertThrows(IllegalArgumentException.class, () -> rig.device().addUsed(first, 17));
            // IN_ORDER: the second chain may not complete before the first.
            assertThrows(IllegalStateException.class, () -> rig.device().addUsed(second, 1));
            rig.device().addUsed(first, 16);
            assertThrows(IllegalStateException.class, () -> first.segment(0));
            assertThrows(IllegalArgumentException.class, () -> rig.device().addUsed(first, 1));
            rig.device().addUsed(second, 0);
            assertFalse(rig.device().isBroken());
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void shouldExportAndImportState(boolean packed) throws Exception {
        try (GuestRam ram = new GuestRam(1 << 20)) {
            Rig rig = Rig.create(ram, packed, 5 + (packed ? 0 : 3), FEATURES, 0);
            long data = ram.allocator.allocate(64 * 1024, 4096);
            for (int i = 0; i < 7; i++) {
                post(rig.driver(), data, 8, 8);
                rig.device().addUsed(rig.device().pop(), 8);
                rig.driver().pollUsed();
            }
            QueueState state = rig.device().exportState();
            assertEquals(packed ? 4 : 7, state.nextAvail());
            assertEquals(packed, state.availWrapCounter());
            DeviceQueue copy = packed ? new PackedQueue("copy") : new SplitQueue("copy");
            copy.importState(rig.driver().config(), state, ram.memory);
            assertEquals(state, copy.exportState());
            int id = post(rig.driver(), data, 8, 8);
            DescriptorChain chain = copy.pop();
            assertEquals(id, chain.id());
            copy.addUsed(chain, 2);
            assertEquals(((long) id << 32) | 2, rig.driver().pollUsed());
        }
    }

    @org.junit.jupiter.api.Test
    void shouldEncodeThePackedVringBaseWord() {
        QueueState s = new QueueState(256, 0, 0, 0, 5, 7, true, false, true);
        assertEquals(5L | 1L << 15 | 7L << 16, s.packedVringBase());
    }
}
