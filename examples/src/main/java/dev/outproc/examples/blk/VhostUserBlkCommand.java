package dev.outproc.examples.blk;

import dev.outproc.core.transport.CleanExit;
import dev.outproc.examples.cli.BackendOptions;
import dev.outproc.examples.migration.MigrationCapabilities;
import dev.outproc.examples.migration.MigrationEndpointServer;
import dev.outproc.examples.migration.MigrationOptions;
import dev.outproc.vhost.backend.VhostUserServer;
import dev.outproc.vhost.program.BackendProgram;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code vhost-user-blk}: a virtio-blk back-end serving a file or block device. */
@Command(name = "vhost-user-blk", mixinStandardHelpOptions = true,
        description = {
                "A vhost-user-blk back-end serving a disk image or block device.",
                "QEMU or any vhost-user front-end connects to it; it serves front-end after",
                "front-end until killed.",
                "",
                "Example:",
                "  java -jar outproc-examples.jar vhost-user-blk --socket-path /tmp/vub.sock \\",
                "      --image disk.img",
                "  qemu-system-x86_64 ... \\",
                "      -object memory-backend-memfd,id=mem,size=1G,share=on \\",
                "      -numa node,memdev=mem \\",
                "      -chardev socket,id=c0,path=/tmp/vub.sock \\",
                "      -device vhost-user-blk-pci,chardev=c0",
                "With --migration-socket PATH it takes part in the migration handshake",
                "('migration relay'); the agreement governs the next SET_DEVICE_STATE_FD save",
                "(as source) or load (as destination)."
        })
public final class VhostUserBlkCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    BackendOptions backend;

    @Mixin
    MigrationOptions migration = new MigrationOptions();

    @Option(names = {"--image", "--blk-file"}, paramLabel = "FILE", description = "Disk image or block device to serve.")
    Path image;

    @Option(names = "--read-only", description = "Refuse writes (offers VIRTIO_BLK_F_RO).")
    boolean readOnly;

    @Option(names = "--queues", paramLabel = "N", defaultValue = "1", description = "Number of request queues (default: ${DEFAULT-VALUE}).")
    int queues;

    @Option(names = "--queue-size", paramLabel = "N", defaultValue = "1024", description = "Largest queue size (default: ${DEFAULT-VALUE}).")
    int queueSize;

    @Option(names = "--serial", paramLabel = "ID", defaultValue = "outproc-blk", description = "Device id returned by GET_ID (default: ${DEFAULT-VALUE}).")
    String serial;

    @Override
    public Integer call() throws IOException {
        if (backend.printCapabilities()) {
            if (image == null) {
                printCapabilities(System.out);
            } else {
                try (BlockStore store = FileBlockStore.open(image, readOnly)) {
                    MigrationCapabilities.print(System.out, "block", CAPABILITY_FEATURES,
                            new VirtioBlkDevice(store, queues, queueSize, serial).descriptor(IMPLEMENTATION_ID, image.toString()));
                }
            }
            return 0;
        }
        String missing = backend.missingSocket();
        if (missing != null) {
            throw new ParameterException(spec.commandLine(), missing);
        }
        if (image == null) {
            throw new ParameterException(spec.commandLine(), "--image=FILE (or --blk-file=FILE) is required");
        }
        if (queues < 1 || queues > 64) {
            throw new ParameterException(spec.commandLine(), "--queues must be 1..64, got " + queues);
        }
        if (queueSize < 2 || queueSize > 32768 || Integer.bitCount(queueSize) != 1) {
            throw new ParameterException(spec.commandLine(), "--queue-size must be a power of two in 2..32768, got " + queueSize);
        }
        // The migration endpoint is closed (its socket file removed) on SIGTERM too; the back-end's own
        // shutdown hook closes the vhost-user server.
        try (CleanExit exit = new CleanExit("vhost-user-blk");
             BlockStore store = FileBlockStore.open(image, readOnly)) {
            VirtioBlkDevice device = new VirtioBlkDevice(store, queues, queueSize, serial);
            if (migration.socket() != null) {
                exit.open(() -> MigrationEndpointServer.start(migration.socket(),
                        migration.sessions(device.descriptor(IMPLEMENTATION_ID, image.toString())), device::migrationAgreed));
            }
            try (VhostUserServer server = backend.start(device)) {
                System.err.println("vhost-user-blk: serving " + store.describe() + " on " + backend.where()
                        + " with " + queues + " queue(s)"
                        + (migration.socket() == null ? "" : "; migration handshake on " + migration.socket()));
                BackendProgram.serve(server);
            }
        }
        return 0;
    }

    /** The implementation id of this back-end in the shipped registry. */
    static final String IMPLEMENTATION_ID = "outproc.dev/examples/file-blk";
    private static final List<String> CAPABILITY_FEATURES = List.of("read-only", "blk-file");

    /**
     * Prints {@code {"type": "block", "features": ["read-only", "blk-file"], "migration": {...}}}: the conventions'
     * capabilities and the migration descriptor's fixed part (with {@code --image}, the whole descriptor).
     */
    static void printCapabilities(PrintStream out) {
        MigrationCapabilities.print(out, "block", CAPABILITY_FEATURES, new dev.outproc.migration.handshake.DeviceDescriptor(
                VirtioBlkDevice.MODEL_ID, IMPLEMENTATION_ID, VirtioBlkDevice.FORMAT_CLASS, java.util.Map.of(), List.of(1, 2), List.of(1, 2)));
    }
}
