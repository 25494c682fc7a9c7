package dev.outproc.vhost.program;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The back-end program conventions' command line, as vhost-user.rst "Backend program conventions" defines it. */
class BackendArgumentsTest {
    @Test
    void shouldTakeTheSocketPathInBothSpellings() {
        BackendArguments spaced = BackendArguments.parse("--socket-path", "/tmp/a.sock");
        BackendArguments joined = BackendArguments.parse("--socket-path=/tmp/a.sock");
        assertEquals(Path.of("/tmp/a.sock"), spaced.socketPath());
        assertEquals(spaced, joined);
        assertEquals(-1, spaced.fd());
        assertEquals("/tmp/a.sock", spaced.where());
    }

    @Test
    void shouldTakeAnInheritedFd() {
        BackendArguments a = BackendArguments.parse("--fd=3");
        assertEquals(3, a.fd());
        assertNull(a.socketPath());
        assertEquals("fd 3", a.where());
    }

    @Test
    void shouldKeepTheProgramsOwnArgumentsInOrder() {
        BackendArguments a = BackendArguments.parse("--mode", "fast", "--socket-path", "/s", "-v", "x");
        assertEquals(List.of("--mode", "fast", "-v", "x"), a.others());
    }

    @Test
    void shouldAnswerCapabilitiesWithoutASocket() {
        assertTrue(BackendArguments.parse("--print-capabilities").printCapabilities());
    }

    @Test
    void shouldRefuseWhatTheConventionsRefuse() {
        assertEquals("one of --socket-path=PATH or --fd=FDNUM is required",
                assertThrows(BackendUsageException.class, BackendArguments::parse).getMessage());
        assertEquals("--socket-path and --fd exclude each other",
                assertThrows(BackendUsageException.class, () -> BackendArguments.parse("--socket-path=/s", "--fd=3")).getMessage());
        assertEquals("--fd needs a file descriptor number, got 'three'",
                assertThrows(BackendUsageException.class, () -> BackendArguments.parse("--fd", "three")).getMessage());
        assertEquals("--fd must be >= 0, got -2",
                assertThrows(BackendUsageException.class, () -> BackendArguments.parse("--fd=-2")).getMessage());
        assertEquals("--socket-path needs a value",
                assertThrows(BackendUsageException.class, () -> BackendArguments.parse("--socket-path")).getMessage());
        assertEquals("--socket-path needs a value",
                assertThrows(BackendUsageException.class, () -> BackendArguments.parse("--socket-path", "--fd=3")).getMessage());
        assertEquals("--socket-path given twice",
                assertThrows(BackendUsageException.class, () -> BackendArguments.parse("--socket-path=/a", "--socket-path=/b")).getMessage());
    }

    @Test
    void shouldPrintTheCapabilitiesJson() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        BackendProgram.printCapabilities(new PrintStream(bytes, true, StandardCharsets.UTF_8), "block", List.of("read-only", "blk-file"));
        assertEquals("{\n  \"type\" : \"block\",\n  \"features\" : [ \"read-only\", \"blk-file\" ]\n}\n",
                bytes.toString(StandardCharsets.UTF_8));
        bytes.reset();
        BackendProgram.printCapabilities(new PrintStream(bytes, true, StandardCharsets.UTF_8), "net", List.of());
        assertEquals("{\n  \"type\" : \"net\"\n}\n", bytes.toString(StandardCharsets.UTF_8));
        assertThrows(IllegalArgumentException.class,
                () -> BackendProgram.printCapabilities(new PrintStream(new ByteArrayOutputStream()), "a\"b", List.of()));
    }

    @Test
    void shouldExitWithUsageStatusOnAWrongCommandLine() {
        assertEquals(BackendProgram.EXIT_USAGE, BackendProgram.main(new String[] {"--socket-path=/tmp/x.sock", "--verbose"},
                "rng", List.of(), () -> {
                    throw new AssertionError("no device is made for a wrong command line");
                }));
        assertEquals(BackendProgram.EXIT_USAGE, BackendProgram.main(new String[0], "rng", List.of(), () -> {
            throw new AssertionError("no device is made for a wrong command line");
        }));
    }
}
