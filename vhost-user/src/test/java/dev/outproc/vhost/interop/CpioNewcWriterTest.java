package dev.outproc.vhost.interop;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The initramfs writer produces archives that GNU cpio (an independent reader of the "newc" format)
 * lists and extracts to the same names, types, modes and bytes.
 */
class CpioNewcWriterTest {

    @TempDir
    Path dir;

    @Test
    void shouldWriteAnArchiveThatCpioExtractsByteForByte() throws IOException {
        long seed = new SplittableRandom().nextLong();
        SplittableRandom random = new SplittableRandom(seed);
        // Sizes around the 4-byte padding boundaries, and names of every length modulo 4.
        byte[][] contents = new byte[6][];
        for (int i = 0; i < contents.length; i++) {
            contents[i] = new byte[random.nextInt(0, 9000) + i];
            random.nextBytes(contents[i]);
        }
        TinyGuest.CpioNewcWriter cpio = new TinyGuest.CpioNewcWriter();
        cpio.directory("d");
        cpio.directory("d/sub");
        for (int i = 0; i < contents.length; i++) {
            cpio.file("d/sub/" + "f".repeat(i + 1), i % 2 == 0 ? 0755 : 0644, contents[i]);
        }
        Path archive = dir.resolve("a.cpio");
        try (OutputStream out = Files.newOutputStream(archive)) {
            cpio.finishTo(out);
        }
        Path root = Files.createDirectory(dir.resolve("root"));
        String err = cpio(root, archive, "-id", "--quiet");
        for (int i = 0; i < contents.length; i++) {
            Path f = root.resolve("d/sub/" + "f".repeat(i + 1));
            assertArrayEquals(contents[i], Files.readAllBytes(f), "content of " + f + ", seed=" + seed + ", cpio: " + err);
            assertEquals(i % 2 == 0 ? "rwxr-xr-x" : "rw-r--r--",
                    PosixFilePermissions.toString(Files.getPosixFilePermissions(f)), "mode of " + f + ", seed=" + seed);
        }
    }

    @Test
    void shouldWriteACharacterDeviceNode() throws IOException {
        TinyGuest.CpioNewcWriter cpio = new TinyGuest.CpioNewcWriter();
        cpio.directory("dev");
        cpio.characterDevice("dev/console", 0600, 5, 1);
        Path archive = dir.resolve("dev.cpio");
        try (OutputStream out = Files.newOutputStream(archive)) {
            cpio.finishTo(out);
        }
        String listing = cpio(dir, archive, "-itv", "--quiet");
        String line = listing.lines().filter(l -> l.endsWith("dev/console")).findFirst()
                .orElseThrow(() -> new AssertionError("dev/console not listed: " + listing));
        assertTrue(line.startsWith("crw-------"), () -> "type and mode: " + line);
        assertTrue(line.matches(".*\\b5,\\s+1\\b.*"), () -> "major 5, minor 1: " + line);
    }

    @Test
    void shouldRejectADuplicateEntry() {
        TinyGuest.CpioNewcWriter cpio = new TinyGuest.CpioNewcWriter();
        cpio.directory("bin");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> cpio.directory("bin"));
        assertTrue(e.getMessage().contains("name=bin"), e.getMessage());
    }

    /** Runs GNU cpio on the archive in {@code workDir}; returns its combined output. */
    private static String cpio(Path workDir, Path archive, String... args) throws IOException {
        Path cpio = Peers.require("cpio");
        var command = new java.util.ArrayList<String>();
        command.add(cpio.toString());
        command.addAll(java.util.List.of(args));
        Process p = new ProcessBuilder(command).directory(workDir.toFile())
                .redirectInput(archive.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        try {
            assertTrue(p.waitFor(30, TimeUnit.SECONDS), "cpio did not finish");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
        assertEquals(0, p.exitValue(), () -> "cpio " + String.join(" ", args) + " failed: " + out);
        return out;
    }
}
