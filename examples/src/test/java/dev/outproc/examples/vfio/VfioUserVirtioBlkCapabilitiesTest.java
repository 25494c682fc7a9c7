package dev.outproc.examples.vfio;

import dev.outproc.examples.Main;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code vfio-user-virtio-blk --print-capabilities}: the virtio-blk model's descriptor in format version 3. */
class VfioUserVirtioBlkCapabilitiesTest {
    @TempDir
    Path dir;

    private String[] run(String... args) {
        PrintStream saved = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
        int status;
        try {
            status = Main.commandLine().execute(args);
        } finally {
            System.setOut(saved);
        }
        return new String[] {Integer.toString(status), captured.toString(StandardCharsets.UTF_8)};
    }

    @Test
    void shouldPrintTheVirtioBlkModelInFormatVersionThree() throws Exception {
        Path image = dir.resolve("disk.img");
        Files.write(image, new byte[1 << 20]);
        String[] r = run("vfio-user-virtio-blk", "--print-capabilities", "--image", image.toString(), "--read-only");
        assertEquals("0", r[0], r[1]);
        String json = r[1].replaceAll("\\s", "");
        assertTrue(json.contains("\"type\":\"vfio-user-pci\""), json);
        assertTrue(json.contains("virtio-spec.org/pci/virtio-blk/state"), json);
        assertTrue(json.contains(VirtioBlkPciMigration.IMPLEMENTATION_ID), json);
        assertTrue(json.contains("pre-copy") && json.contains("dma-logging"), json);
        assertTrue(json.contains("\"read\":[3],\"write\":[3]"), json);
        assertTrue(json.contains("\"read_only\":\"true\""), json);
    }

    @Test
    void shouldRequireASocketToServe() {
        assertEquals("2", run("vfio-user-virtio-blk", "--image", dir.resolve("none.img").toString())[0]);
    }
}
