package dev.outproc.vfio.interop;

import org.junit.jupiter.api.Assumptions;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Finds the QEMU with the vfio-user client that {@code .ci/install-peers.sh} builds into
 * {@code <peers dir>/qemu-vfio-user/bin/qemu-system-x86_64} (peers dir: system property
 * {@code outproc.peers.dir}, else {@code OUTPROC_PEERS_DIR}, else {@code /var/cache/outproc-peers}). A
 * missing QEMU skips the test, or fails it when {@code interop.required=true}. Guest tests of other
 * modules use it too (the module's test jar); firmware comes from the system: {@link #FIRMWARE_ARGS}.
 */
public final class QemuVfioUserPeer {
    /** Firmware search path: the Debian repack carries no blobs, so SeaBIOS and the option ROMs come from the system. */
    public static final java.util.List<String> FIRMWARE_ARGS = java.util.List.of("-L", "/usr/share/seabios", "-L", "/usr/share/qemu");

    private QemuVfioUserPeer() {
    }

    /** {@return the directory the peers are installed in} */
    public static Path peersDirectory() {
        String dir = System.getProperty("outproc.peers.dir");
        if (dir == null || dir.isBlank()) {
            dir = System.getenv("OUTPROC_PEERS_DIR");
        }
        return Path.of(dir == null || dir.isBlank() ? "/var/cache/outproc-peers" : dir);
    }

    /** {@return the QEMU binary with {@code vfio-user-pci}; skips (or fails under {@code interop.required}) when absent} */
    public static Path require() {
        Path qemu = peersDirectory().resolve("qemu-vfio-user/bin/qemu-system-x86_64");
        if (!Files.isExecutable(qemu)) {
            String message = "QEMU with vfio-user-pci not found at " + qemu + "; run .ci/install-peers.sh";
            if (Boolean.getBoolean("interop.required")) {
                fail(message + " [interop.required=true]");
            }
            Assumptions.abort(message);
        }
        return qemu;
    }
}
