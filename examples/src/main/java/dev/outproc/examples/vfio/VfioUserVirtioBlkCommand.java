package dev.outproc.examples.vfio;

import dev.outproc.core.transport.CleanExit;
import dev.outproc.core.transport.UnixListener;
import dev.outproc.examples.blk.BlockStore;
import dev.outproc.examples.blk.FileBlockStore;
import dev.outproc.examples.blk.VirtioBlkDevice;
import dev.outproc.examples.migration.MigrationCapabilities;
import dev.outproc.examples.migration.MigrationEndpointServer;
import dev.outproc.examples.migration.MigrationOptions;
import dev.outproc.vfio.server.ServerOptions;
import dev.outproc.vfio.server.VfioUserServer;
import dev.outproc.vfio.virtio.VirtioPciDevice;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code vfio-user-virtio-blk}: a disk image as a virtio-blk PCI function over vfio-user (the block logic
 * of {@link VirtioBlkDevice} behind {@link VirtioPciDevice}), served client after client until SIGTERM or
 * SIGINT (which closes the listener, removes the socket file and ends the current client's session).
 */
@Command(name = "vfio-user-virtio-blk", mixinStandardHelpOptions = true,
        description = {
                "virtio-blk as a PCI device over vfio-user.",
                "",
                "A virtio 1.x modern PCI transport with MSI-X: a guest under QEMU 10.1 or later",
                "with -device vfio-user-pci sees it as /dev/vda. Serves client after client",
                "until killed. Migrates with PRE_COPY and DMA logging; the state is a",
                "migration-format stream (virtio-blk format version 3). With --migration-socket",
                "PATH it takes part in the migration handshake and moves state only under an",
                "agreement.",
                "",
                "Example:",
                "  java -jar outproc-examples.jar vfio-user-virtio-blk \\",
                "      --socket-path /tmp/blk.sock --image disk.img",
                "  qemu-system-x86_64 ... \\",
                "      -object memory-backend-memfd,id=mem,size=512M,share=on \\",
                "      -machine pc,memory-backend=mem \\",
                "      -device '{\"driver\":\"vfio-user-pci\",",
                "               \"socket\":{\"path\":\"/tmp/blk.sock\",\"type\":\"unix\"}}'"
        })
public final class VfioUserVirtioBlkCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    /** Exactly one of the socket options. */
    @ArgGroup(exclusive = true, multiplicity = "0..1")
    VfioUserSocket socket;

    @Mixin
    MigrationOptions migration = new MigrationOptions();

    @Option(names = "--print-capabilities",
            description = "Print the device type, features and migration descriptor as JSON and exit.")
    boolean printCapabilities;

    /** The conventions' feature names of this device. */
    private static final List<String> CAPABILITY_FEATURES = List.of("read-only", "blk-file", "pre-copy", "dma-logging");

    @Option(names = "--image", paramLabel = "FILE", required = true, description = "Disk image or block device to serve.")
    Path image;

    @Option(names = "--read-only", description = "Refuse writes (offers VIRTIO_BLK_F_RO).")
    boolean readOnly;

    @Option(names = "--queues", paramLabel = "N", defaultValue = "1", description = "Number of request queues (default: ${DEFAULT-VALUE}).")
    int queues;

    @Option(names = "--queue-size", paramLabel = "N", defaultValue = "256", description = "Largest queue size (default: ${DEFAULT-VALUE}).")
    int queueSize;

    @Option(names = "--serial", paramLabel = "ID", defaultValue = "outproc-vfio-blk", description = "Device id returned by GET_ID (default: ${DEFAULT-VALUE}).")
    String serial;

    @Override
    public Integer call() {
        if (queues < 1 || queues > 64) {
            throw new ParameterException(spec.commandLine(), "--queues must be 1..64, got " + queues);
        }
        if (queueSize < 2 || queueSize > 32768 || Integer.bitCount(queueSize) != 1) {
            throw new ParameterException(spec.commandLine(), "--queue-size must be a power of two in 2..32768, got " + queueSize);
        }
        if (printCapabilities) {
            try (BlockStore store = FileBlockStore.open(image, readOnly);
                 VirtioPciDevice device = new VirtioPciDevice(new VirtioBlkDevice(store, queues, queueSize, serial))) {
                VirtioBlkPciMigration m = VirtioBlkPciMigration.install(device, (VirtioBlkDevice) device.device(), false);
                MigrationCapabilities.print(System.out, "vfio-user-pci", CAPABILITY_FEATURES, m.descriptor(image.toString()));
            } catch (IOException e) {
                System.err.println("vfio-user-virtio-blk: " + e.getMessage());
                return 1;
            }
            return 0;
        }
        if (socket == null) {
            throw new ParameterException(spec.commandLine(), "one of --socket-path=PATH or --fd=FDNUM is required");
        }
        String where = socket.where();
        try (CleanExit exit = new CleanExit("vfio-user-virtio-blk");
             BlockStore store = FileBlockStore.open(image, readOnly);
             VirtioPciDevice device = new VirtioPciDevice(new VirtioBlkDevice(store, queues, queueSize, serial))) {
            VirtioBlkPciMigration m = VirtioBlkPciMigration.install(device, (VirtioBlkDevice) device.device(), migration.socket() != null);
            if (migration.socket() != null) {
                exit.open(() -> MigrationEndpointServer.start(migration.socket(), migration.sessions(m.descriptor(image.toString())), m::agreed));
            }
            VfioUserServer server = new VfioUserServer(device, ServerOptions.DEFAULTS);
            exit.onStop(server::disconnectClient);
            UnixListener listener = exit.open(socket::listen);
            System.err.println("vfio-user-virtio-blk: serving " + store.describe() + " on " + where + " with " + queues + " queue(s)"
                    + (migration.socket() == null ? "" : "; migration handshake on " + migration.socket()));
            server.serve(listener);
        } catch (IOException e) {
            System.err.println("vfio-user-virtio-blk: " + VfioUserSocket.naming(where, e));
            return 1;
        }
        return 0;
    }
}
