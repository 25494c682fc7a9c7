package dev.outproc.examples.net;

import dev.outproc.examples.cli.BackendOptions;
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
import java.util.List;
import java.util.concurrent.Callable;

/** {@code vhost-user-net}: a virtio-net back-end that loops frames back, sinks them or sources them. */
@Command(name = "vhost-user-net", mixinStandardHelpOptions = true,
        description = {
                "A vhost-user-net back-end: loopback, sink or source of frames.",
                "",
                "Modes (every frame's bytes are copied, as a real back-end does):",
                "  loopback  transmitted frames come back on the same pair's receive queue",
                "  sink      transmitted frames are copied out, counted and dropped",
                "  source    every posted receive buffer gets a frame of --frame-size bytes",
                "            (transmitted ones are sunk)",
                "With --queue-pairs N > 1 it offers VIRTIO_NET_F_MQ and a control queue; each",
                "pair runs on its own worker thread (up to --workers). Serves front-end after",
                "front-end until killed.",
                "",
                "Example:",
                "  java -jar outproc-examples.jar vhost-user-net --socket-path /tmp/vun.sock \\",
                "      --mode loopback --busy-poll",
                "  dpdk-testpmd --no-pci --no-huge -m 1024 \\",
                "      --vdev 'net_virtio_user0,path=/tmp/vun.sock,queues=1' \\",
                "      -- --forward-mode=io --tx-first --stats-period 1 --total-num-mbufs=32768"
        })
public final class VhostUserNetCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    BackendOptions backend;

    @Option(names = "--mode", paramLabel = "MODE", defaultValue = "loopback",
            description = "loopback, sink or source (default: ${DEFAULT-VALUE}).")
    String mode;

    @Option(names = "--frame-size", paramLabel = "BYTES", defaultValue = "64",
            description = "Size of the frames --mode source sends, Ethernet header included, FCS excluded "
                    + "(14.." + VirtioNetDevice.MAX_FRAME_BYTES + "; default: ${DEFAULT-VALUE}).")
    int frameSize;

    @Option(names = "--queue-pairs", paramLabel = "N", defaultValue = "1",
            description = "Queue pairs (1.." + VirtioNetDevice.MAX_QUEUE_PAIRS + "; default: ${DEFAULT-VALUE}).")
    int queuePairs;

    @Option(names = "--mac", paramLabel = "MAC", defaultValue = "52:54:00:12:34:56",
            description = "MAC address in the configuration space (default: ${DEFAULT-VALUE}).")
    String mac;

    @Option(names = "--queue-size", paramLabel = "N", defaultValue = "1024",
            description = "Largest queue size (default: ${DEFAULT-VALUE}).")
    int queueSize;

    @Option(names = "--stats-interval-ms", paramLabel = "MS", defaultValue = "0",
            description = "Print the packet counters to stderr every MS milliseconds, 0 for never (default: ${DEFAULT-VALUE}).")
    long statsIntervalMillis;

    @Override
    public Integer call() throws IOException {
        if (backend.printCapabilities()) {
            printCapabilities(System.out);
            return 0;
        }
        String missing = backend.missingSocket();
        if (missing != null) {
            throw new ParameterException(spec.commandLine(), missing);
        }
        VirtioNetDevice.Mode m;
        try {
            m = VirtioNetDevice.Mode.parse(mode);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--mode must be loopback, sink or source, got '" + mode + "'");
        }
        if (frameSize < VirtioNetDevice.ETHERNET_HEADER_BYTES || frameSize > VirtioNetDevice.MAX_FRAME_BYTES) {
            throw new ParameterException(spec.commandLine(), "--frame-size must be " + VirtioNetDevice.ETHERNET_HEADER_BYTES
                    + ".." + VirtioNetDevice.MAX_FRAME_BYTES + ", got " + frameSize);
        }
        if (queuePairs < 1 || queuePairs > VirtioNetDevice.MAX_QUEUE_PAIRS) {
            throw new ParameterException(spec.commandLine(), "--queue-pairs must be 1.." + VirtioNetDevice.MAX_QUEUE_PAIRS
                    + ", got " + queuePairs);
        }
        byte[] macBytes;
        try {
            macBytes = VirtioNetDevice.parseMac(mac);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--mac: " + e.getMessage());
        }
        if (queueSize < 2 || queueSize > 32768 || Integer.bitCount(queueSize) != 1) {
            throw new ParameterException(spec.commandLine(), "--queue-size must be a power of two in 2..32768, got " + queueSize);
        }
        if (statsIntervalMillis < 0) {
            throw new ParameterException(spec.commandLine(), "--stats-interval-ms must be >= 0, got " + statsIntervalMillis);
        }
        // The device puts both rings of a pair in one worker group, so loopback stays on one thread.
        VirtioNetDevice device = new VirtioNetDevice(m, macBytes, queueSize, queuePairs, frameSize);
        try (VhostUserServer server = backend.start(device)) {
            System.err.println("vhost-user-net: " + m.name().toLowerCase(java.util.Locale.ROOT)
                    + (m == VirtioNetDevice.Mode.SOURCE ? " of " + frameSize + "-byte frames" : "")
                    + ", " + queuePairs + " queue pair" + (queuePairs == 1 ? "" : "s") + ", MAC "
                    + device.macText() + " on " + backend.where());
            Thread stats = null;
            if (statsIntervalMillis > 0) {
                stats = Thread.ofPlatform().daemon(true).name("vhost-user-net-stats")
                        .start(() -> printStats(device, statsIntervalMillis));
            }
            try {
                BackendProgram.serve(server);
            } finally {
                if (stats != null) {
                    stats.interrupt();
                }
            }
        }
        System.err.println("vhost-user-net: " + device.counters());
        return 0;
    }

    private static void printStats(VirtioNetDevice device, long intervalMillis) {
        try {
            while (true) {
                Thread.sleep(intervalMillis);
                System.err.println("vhost-user-net: " + device.counters());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Prints {@code {"type": "net"}}: vhost-user.json defines the type "net" and no capability features
     * for it (vhost-user.rst "Backend program conventions" has no vhost-user-net options).
     */
    static void printCapabilities(PrintStream out) {
        BackendProgram.printCapabilities(out, "net", List.of());
    }
}
