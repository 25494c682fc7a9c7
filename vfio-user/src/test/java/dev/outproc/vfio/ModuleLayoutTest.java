package dev.outproc.vfio;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The module descriptor names the module and exports each concern's package, one per directory. */
class ModuleLayoutTest {
    @Test
    void moduleDescriptorExportsEveryConcern() throws Exception {
        String descriptor = Files.readString(Path.of("src/main/java/module-info.java"));
        assertTrue(descriptor.contains("module dev.outproc.vfio"), descriptor);
        for (String concern : List.of("message", "connection", "server", "client", "pci")) {
            assertTrue(descriptor.contains("exports dev.outproc.vfio." + concern + ";"), concern);
            assertTrue(Files.isDirectory(Path.of("src/main/java/dev/outproc/vfio", concern)), concern);
        }
    }
}
