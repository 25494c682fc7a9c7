package dev.outproc.core.fd;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.memory.MemFd;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OwnedFdTest {
    @Test
    void shouldCloseExactlyOnce() {
        int before = OpenFds.count();
        OwnedFd fd;
        try {
            fd = MemFd.create("t", 4096);
        } catch (NativeException e) {
            throw new AssertionError(e);
        }
        assertEquals(before + 1, OpenFds.count());
        fd.close();
        fd.close();
        assertEquals(before, OpenFds.count());
        assertFalse(fd.isOpen());
        assertThrows(IllegalStateException.class, fd::get);
    }

    @Test
    void shouldTransferOwnership() throws Exception {
        OwnedFd first = MemFd.create("t", 4096);
        int raw = first.get();
        OwnedFd second = first.transfer();
        assertFalse(first.isOpen());
        assertEquals(raw, second.get());
        first.close(); // closes nothing
        assertTrue(second.isOpen());
        assertEquals(4096, MemFd.size(second.get()));
        second.close();
    }

    @Test
    void shouldNameCallErrnoAndArgumentsOnFailure() throws Exception {
        OwnedFd fd = MemFd.create("t", 0);
        int raw = fd.get();
        fd.close();
        NativeException e = assertThrows(NativeException.class, () -> MemFd.size(raw));
        assertEquals(Errno.EBADF, e.errno());
        assertEquals("EBADF", e.errnoName());
        assertTrue(e.getMessage().contains("fstat(fd=" + raw), e.getMessage());
        assertTrue(e.getMessage().contains("EBADF (9)"), e.getMessage());
    }

    @Test
    void shouldRejectNegativeSizes() {
        assertThrows(IllegalArgumentException.class, () -> MemFd.create("t", -1));
        assertThrows(IllegalArgumentException.class, () -> OwnedFd.of(-1));
    }

    @Test
    void shouldSealMemfd() throws Exception {
        try (OwnedFd fd = MemFd.create("sealed", 8192, true)) {
            MemFd.addSeals(fd, MemFd.SEAL_SHRINK | MemFd.SEAL_GROW);
            assertEquals(MemFd.SEAL_SHRINK | MemFd.SEAL_GROW, MemFd.seals(fd) & (MemFd.SEAL_SHRINK | MemFd.SEAL_GROW));
        }
        try (OwnedFd fd = MemFd.create("unsealable", 4096, false)) {
            NativeException e = assertThrows(NativeException.class, () -> MemFd.addSeals(fd, MemFd.SEAL_GROW));
            assertEquals(Errno.EPERM, e.errno());
        }
    }

    @Test
    void eventFdShouldCountSignals() throws Exception {
        try (EventFd e = EventFd.create()) {
            assertEquals(0, e.drain());
            e.signal();
            e.signal();
            e.signal();
            assertEquals(3, e.drain());
            assertEquals(0, e.drain());
        }
    }
}
