package dev.outproc.examples.migration;

import dev.outproc.migration.model.Registry;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;

/**
 * The device models of the example back-ends that the migration-format library does not ship: registry files
 * (registry-format.md) kept as resources of this module under {@code dev/outproc/examples/registry/}, merged over
 * {@link Registry#builtin()} (which ships the virtio-blk model the vhost-user-blk back-end uses). Every example
 * back-end and the {@code migration} tool check descriptors against this registry.
 */
public final class ExampleModels {
    /** The registry resources of this module. */
    public static final List<String> RESOURCES = List.of("vfio-user-sample.json");

    private ExampleModels() {}

    /**
     * Loads the shipped models and the examples' models.
     *
     * @return the merged registry
     * @throws IOException if a resource is missing or invalid (a packaging bug)
     */
    public static Registry registry() throws IOException {
        Registry r = Registry.builtin();
        for (String name : RESOURCES) {
            try (InputStream in = ExampleModels.class.getResourceAsStream("/dev/outproc/examples/registry/" + name)) {
                if (in == null) {
                    throw new IOException("no example registry resource named " + name);
                }
                r = r.merge(Registry.parse(in.readAllBytes()));
            }
        }
        return r;
    }
}
