package dev.outproc.core.memory;

import dev.outproc.core.fd.Errno;
import dev.outproc.core.fd.FdChannel;
import dev.outproc.core.fd.NativeException;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.internal.linux.Linux;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A memory fd must not shrink under a mapping (a touch past the end is SIGBUS, which aborts the JVM):
 * the seals outproc's memfds carry, sealing a received fd, and refusing a file too small to map.
 */
class MemFdSealTest {
    private static final int SIZE = 64 * 1024;

    @Test
    void ourGuestRamShouldBeSealedAgainstShrinkAndGrowAndLeaveSealingOpen() throws Exception {
        try (GuestRegion region = GuestRegion.allocate(0x10_0000, SIZE, 0x7f00_0000_0000L)) {
            int seals = MemFd.seals(region.fd());
            assertEquals(MemFd.SEAL_SHRINK | MemFd.SEAL_GROW, seals, "seals=0x" + Integer.toHexString(seals));
            assertEquals(MemFd.ShrinkSeal.ALREADY_SEALED, MemFd.sealAgainstShrink(region.fd().get()));
            NativeException e = assertThrows(NativeException.class, () -> Linux.ftruncate(region.fd().get(), 0));
            assertEquals(Errno.EPERM, e.errno());
        }
    }

    @Test
    void ourMemfdsShouldAllowSealing() throws Exception {
        try (OwnedFd fd = MemFd.create("sealable", SIZE)) {
            assertEquals(0, MemFd.seals(fd), "no seal yet, F_SEAL_SEAL not set");
        }
    }

    @Test
    void aReceivedSealableMemfdShouldBeSealedSoThePeerCannotShrinkIt() throws Exception {
        try (OwnedFd peerCopy = MemFd.create("peer-ram", SIZE); OwnedFd received = peerCopy.duplicate();
             SharedMapping mapping = SharedMapping.map(received.get(), 0, SIZE, true)) {
            assertEquals(MemFd.ShrinkSeal.SEALED_NOW, MemFd.sealAgainstShrink(received.get()));
            assertTrue(MemFd.ShrinkSeal.SEALED_NOW.protects());
            // The attack of the finding: the peer truncates its copy while we hold a mapping.
            NativeException e = assertThrows(NativeException.class, () -> Linux.ftruncate(peerCopy.get(), 0));
            assertEquals(Errno.EPERM, e.errno());
            mapping.segment().set(java.lang.foreign.ValueLayout.JAVA_LONG, SIZE - 8, 1L); // still backed
            assertEquals(SIZE, MemFd.size(received.get()));
        }
    }

    @Test
    void aMemfdWithSealingLockedShouldBeReportedAsUnprotected() throws Exception {
        try (OwnedFd fd = MemFd.create("locked", SIZE, false)) {
            assertEquals(MemFd.SEAL_SEAL, MemFd.seals(fd));
            MemFd.ShrinkSeal result = MemFd.sealAgainstShrink(fd.get());
            assertEquals(MemFd.ShrinkSeal.SEALING_NOT_ALLOWED, result);
            assertFalse(result.protects());
        }
    }

    @Test
    void anFdWithoutSealsShouldBeReportedAsNotSealable() throws Exception {
        OwnedFd[] pipe = FdChannel.pipe();
        try (OwnedFd in = pipe[0]; OwnedFd out = pipe[1]) {
            assertEquals(MemFd.ShrinkSeal.NOT_SEALABLE, MemFd.sealAgainstShrink(in.get()));
        }
    }

    @Test
    void aFileTooSmallForTheMappingShouldBeRefusedBeforeMapping() throws Exception {
        try (OwnedFd fd = MemFd.create("small", 8192)) {
            MemFd.requireCovers(fd.get(), 4096, 4096);
            GuestMemoryException e = assertThrows(GuestMemoryException.class,
                    () -> MemFd.requireCovers(fd.get(), 4096, 8192));
            assertTrue(e.getMessage().contains("file size=8192"), e.getMessage());
            GuestMemoryException viaRegion = assertThrows(GuestMemoryException.class,
                    () -> GuestRegion.map(0x10_0000, SIZE, 0x7f00_0000_0000L, 0, fd, false));
            assertTrue(viaRegion.getMessage().contains("too small"), viaRegion.getMessage());
            assertTrue(fd.isOpen(), "the caller still owns the fd");
        }
    }
}
