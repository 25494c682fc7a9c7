package dev.outproc.vfio.server;

import dev.outproc.core.transport.UnixListener;

import java.nio.file.Path;

/**
 * Serves {@link SampleDevice} on a socket path until killed: the peer that libvfio-user's sample client
 * and QEMU's vfio-user-pci are run against. Usage: {@code SampleServerMain SOCKET_PATH [qemu]}.
 */
public final class SampleServerMain {
    private SampleServerMain() {
    }

    /**
     * Runs the server.
     *
     * @param args the socket path, then optionally {@code qemu} for QEMU's DMA_READ/WRITE layout
     * @throws Exception when the socket cannot be bound
     */
    public static void main(String[] args) throws Exception {
        ServerOptions options = ServerOptions.DEFAULTS;
        if (args.length > 1 && args[1].equals("qemu")) {
            options = options.withDmaLayout(dev.outproc.vfio.message.DmaAccessLayout.QEMU);
        }
        try (UnixListener listener = UnixListener.bind(Path.of(args[0]))) {
            new VfioUserServer(new SampleDevice(), options).serve(listener);
        }
    }
}
