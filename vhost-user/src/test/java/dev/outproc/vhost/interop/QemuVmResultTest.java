package dev.outproc.vhost.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import org.junit.jupiter.api.Test;

/** Reading the guest's results off its console: markers may share a line with firmware output. */
class QemuVmResultTest {

    private static QemuVm.Result result(String console, int exitCode, boolean timedOut) {
        return new QemuVm.Result(exitCode, timedOut, console, "", Duration.ofMillis(1), "qemu-system-x86_64 ...");
    }

    @Test
    void shouldReturnTheLinesBetweenTheMarkers() {
        String console = "SeaBIOS\nBooting from ROM.." + TinyGuest.BEGIN_MARKER + "\nsum 42\nkernel 6.1\n"
                + TinyGuest.END_MARKER + "\nafter\n" + TinyGuest.BEGIN_MARKER + "\nsecond\n" + TinyGuest.END_MARKER + "\n";
        assertEquals("sum 42\nkernel 6.1", result(console, 0, false).between());
    }

    @Test
    void shouldReturnNothingWhenTheMarkersAreAdjacent() {
        String console = TinyGuest.BEGIN_MARKER + "\n" + TinyGuest.END_MARKER + "\n";
        assertEquals("", result(console, 0, false).between());
    }

    @Test
    void shouldNameTheMissingMarkerAndShowTheConsole() {
        String console = "Kernel panic - not syncing: VFS: Unable to mount root fs\n";
        AssertionError e = assertThrows(AssertionError.class, () -> result(console, 0, false).between());
        assertTrue(e.getMessage().contains(TinyGuest.BEGIN_MARKER), e.getMessage());
        assertTrue(e.getMessage().contains("Unable to mount root fs"), e.getMessage());

        String unterminated = TinyGuest.BEGIN_MARKER + "\npartial\n";
        AssertionError e2 = assertThrows(AssertionError.class, () -> result(unterminated, 0, false).between());
        assertTrue(e2.getMessage().contains(TinyGuest.END_MARKER), e2.getMessage());
    }

    @Test
    void shouldCountOnlyACleanExitAsPowerOff() {
        assertTrue(result("", 0, false).poweredOff());
        assertFalse(result("", 1, false).poweredOff());
        assertFalse(result("", -1, true).poweredOff());
    }
}
