package dev.outproc.vhost.backend;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The back-end process of the crash test: serves a file-backed {@link RamBlkDevice} (INFLIGHT_SHMFD is
 * offered by the library) on a socket until it is killed.
 *
 * <p>Arguments: {@code SOCKET IMAGE HOLD_AFTER [UNSEALABLE_MEMORY]}; with {@code HOLD_AFTER >= 0} the device
 * stops completing requests after that many, so that requests are surely in flight when the test kills the
 * process. {@code UNSEALABLE_MEMORY} is {@code accept} (the default, {@link VhostUserBackend.UnsealableMemory#ACCEPT_WITH_WARNING})
 * or {@code refuse}. Prints {@code READY} once it listens.
 */
public final class CrashBackendMain {
    private CrashBackendMain() {
    }

    /**
     * Runs the back-end.
     *
     * @param args socket path, image path, hold-after count, optionally the unsealable-memory policy
     * @throws IOException when the image or the socket cannot be opened
     */
    public static void main(String[] args) throws IOException {
        Path socket = Path.of(args[0]);
        Path image = Path.of(args[1]);
        long holdAfter = Long.parseLong(args[2]);
        try (FileChannel file = FileChannel.open(image, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            // A shared file mapping: what the device writes is in the page cache at once, so it survives kill -9.
            MemorySegment store = file.map(FileChannel.MapMode.READ_WRITE, 0, file.size(), Arena.global());
            RamBlkDevice device = new RamBlkDevice(store, 1, RamBlkDevice.defaultFeatures(), 0);
            if (holdAfter >= 0) {
                device.holdAfter = holdAfter;
            }
            VhostUserBackend.Options options = new VhostUserBackend.Options(1, false);
            if (args.length > 3) {
                options = options.withUnsealableMemory(switch (args[3]) {
                    case "accept" -> VhostUserBackend.UnsealableMemory.ACCEPT_WITH_WARNING;
                    case "refuse" -> VhostUserBackend.UnsealableMemory.REFUSE;
                    default -> throw new IllegalArgumentException("unsealable-memory policy is accept or refuse, got " + args[3]);
                });
            }
            VhostUserServer server = VhostUserServer.listen(device, options, socket);
            System.out.println("READY");
            System.out.flush();
            server.run();
        }
    }
}
