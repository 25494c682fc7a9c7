package dev.outproc.vfio;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Placeholder until the vfio-user module has code: the module descriptor exists and names the module. */
class ModuleLayoutTest {
    @Test
    void moduleDescriptorNamesTheModule() throws Exception {
        String descriptor = Files.readString(Path.of("src/main/java/module-info.java"));
        assertTrue(descriptor.contains("module dev.outproc.vfio"), descriptor);
    }
}
