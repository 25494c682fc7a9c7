package dev.outproc.vhost.interop;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The busybox lookup accepts only static ELF executables: the guest has no dynamic loader. */
class PeersTest {

    @TempDir
    Path dir;

    @Test
    void shouldTellStaticFromDynamicElf() throws IOException {
        assertTrue(Peers.isStaticElf(elf(dir.resolve("static"), false)), "ELF without PT_INTERP");
        assertFalse(Peers.isStaticElf(elf(dir.resolve("dynamic"), true)), "ELF with PT_INTERP");
    }

    @Test
    void shouldNotTakeAScriptOrATruncatedFileForAStaticElf() throws IOException {
        assertFalse(Peers.isStaticElf(Files.writeString(dir.resolve("script"), "#!/bin/sh\necho hi\n")));
        byte[] truncated = Files.readAllBytes(elf(dir.resolve("t"), false));
        assertFalse(Peers.isStaticElf(Files.write(dir.resolve("truncated"), java.util.Arrays.copyOf(truncated, 40))));
        assertFalse(Peers.isStaticElf(dir.resolve("absent")));
    }

    @Test
    void shouldReturnAShortSocketPathForADeepDirectory() {
        Path deep = dir.resolve("x".repeat(60)).resolve("y".repeat(60));
        Path socket = Peers.socketPath(deep, "vub.sock");
        assertTrue(socket.toString().length() <= 100, () -> "socket path too long for sun_path: " + socket);
        assertTrue(socket.getFileName().toString().equals("vub.sock"), socket::toString);
    }

    /** A minimal ELF64 header with two program headers: PT_LOAD, then PT_INTERP or PT_NOTE. */
    private static Path elf(Path file, boolean withInterp) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(64 + 2 * 56).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(0, 0x464c457f).put(4, (byte) 2).put(5, (byte) 1).put(6, (byte) 1);
        b.putLong(32, 64).putShort(54, (short) 56).putShort(56, (short) 2);
        b.putInt(64, 1);                        // PT_LOAD
        b.putInt(64 + 56, withInterp ? 3 : 4);  // PT_INTERP or PT_NOTE
        return Files.write(file, b.array());
    }
}
