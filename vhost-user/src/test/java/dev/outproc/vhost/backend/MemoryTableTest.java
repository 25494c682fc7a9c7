package dev.outproc.vhost.backend;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.vhost.frontend.FrontendException;
import dev.outproc.vhost.message.ProtocolFeature;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The memory-table handler (SET_MEM_TABLE, ADD_MEM_REG, REM_MEM_REG) through the real dispatcher, with
 * core's driver-side queues as the guest. (Hostile tables are in {@link HostileFrontendTest}, table
 * changes under running I/O in {@link ProtocolFeatureMatrixTest}.)
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class MemoryTableTest {
    private static final long MEMORY = 2L << 20;
    private static final long VERSION_1 = VirtioFeature.VERSION_1.mask();

    @TempDir
    Path dir;

    private Path socket;
    private RamBlkDevice device;
    private Rig.Served served;
    private long seed;
    private SplittableRandom random;

    @BeforeEach
    void start() throws IOException {
        seed = System.nanoTime();
        random = new SplittableRandom(seed);
        socket = dir.resolve("memory.sock");
        device = RamBlkDevice.ram(1 << 20, 1);
        served = Rig.serve(socket, device);
    }

    @AfterEach
    void stop() throws InterruptedException {
        served.close();
    }

    private VhostUserBackend backend() {
        return served.server().backend();
    }

    /** Buffers in every region of a multi-region table are reached at the right place. */
    @Test
    void aTableOfSeveralRegionsShouldServeBuffersInEach() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.negotiate(VERSION_1, true, ProtocolFeature.REPLY_ACK.mask());
            GuestRegion second = rig.addRegion(1 << 20);
            GuestRegion third = rig.addRegion(1 << 20);
            rig.setMemTable();
            assertEquals(3, backend().memory().regionCount());
            Rig.Ring ring = rig.ring(0, 16, acked, 2, 4096);
            rig.program(ring, Rig.Setup.standard());
            long sector = 0;
            for (GuestRegion region : List.of(second, third)) {
                byte[] data = new byte[4096];
                random.nextBytes(data);
                MemorySegment.copy(data, 0, region.segment(), ValueLayout.JAVA_BYTE, 100, data.length);
                ring.submitAt(0, RamBlkDevice.T_OUT, sector, region.guestPhysAddr() + 100, data.length, false, false);
                ring.kick();
                assertEquals(RamBlkDevice.S_OK, ring.status(ring.await(10_000)), "seed=" + seed);
                assertArrayEquals(data, device.store().asSlice(sector * 512, data.length).toArray(ValueLayout.JAVA_BYTE),
                        "data from gpa " + Long.toHexString(region.guestPhysAddr()) + ", seed=" + seed);
                sector += 8;
            }
        }
    }

    /** A new table replaces the old one whole: a ring set up afterwards must lie in the new one. */
    @Test
    void aNewTableShouldReplaceTheOldOne() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.negotiate(VERSION_1, true, ProtocolFeature.REPLY_ACK.mask());
            rig.setMemTable();
            GuestRegion elsewhere = GuestRegion.allocate(0x8000_0000L, 1 << 20, 0x7e00_0000_0000L);
            try {
                rig.fe.setMemTable(GuestMemory.of(List.of(elsewhere)));
                assertEquals(1, backend().memory().regionCount());
                assertEquals(elsewhere.guestPhysAddr(), backend().memory().region(0).guestPhysAddr());
                // The rig's rings lie in its first region, which is no longer shared.
                Rig.Ring ring = rig.ring(0, 16, acked, 2, 4096);
                assertThrows(FrontendException.class, () -> rig.program(ring, Rig.Setup.standard()));
                rig.setMemTable();
                rig.program(ring, Rig.Setup.standard());
                assertEquals(RamBlkDevice.S_OK, ring.write(0, 0, new byte[512]));
            } finally {
                elsewhere.close();
            }
        }
    }

    @Test
    void slotsShouldNeedConfigureMemSlotsAndRemovalAnExactMatch() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            rig.negotiate(VERSION_1, true, ProtocolFeature.REPLY_ACK.mask());
            // GET_MAX_MEM_SLOTS answers a u64 count, which cannot carry a refusal: the connection closes.
            assertThrows(IOException.class, rig.fe::getMaxMemSlots, "GET_MAX_MEM_SLOTS needs CONFIGURE_MEM_SLOTS");
        }
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            rig.negotiate(VERSION_1, true, ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK,
                    ProtocolFeature.CONFIGURE_MEM_SLOTS));
            assertEquals(VhostUserBackend.MAX_MEM_SLOTS, rig.fe.getMaxMemSlots());
            rig.fe.addMemRegion(rig.regions.get(0));
            GuestRegion extra = rig.addRegion(1 << 20);
            rig.fe.addMemRegion(extra);
            assertEquals(2, backend().memory().regionCount());
            GuestRegion sameStartOtherSize = GuestRegion.allocate(extra.guestPhysAddr(), 1 << 19, extra.userAddr());
            try {
                assertThrows(FrontendException.class, () -> rig.fe.removeMemRegion(sameStartOtherSize));
            } finally {
                sameStartOtherSize.close();
            }
            assertEquals(2, backend().memory().regionCount(), "nothing removed by a near match");
            rig.fe.removeMemRegion(extra);
            assertEquals(1, backend().memory().regionCount());
        }
    }

    @Test
    void theTableShouldBeUnmappedWhenTheFrontEndLeaves() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            rig.negotiate(VERSION_1, true, ProtocolFeature.REPLY_ACK.mask());
            rig.setMemTable();
            assertEquals(1, backend().memory().regionCount());
        }
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (backend().memory().regionCount() != 0 && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        assertEquals(0, backend().memory().regionCount());
    }
}
