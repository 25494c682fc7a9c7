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

/** {@code vhost-user-net}: a virtio-net back-end that loops frames back or sinks them. */
@Command(name = "vhost-user-net", mixinStandardHelpOptions = true,
        description = {
                "A vhost-user-net back-end with one queue pair: transmitted frames come back on the receive queue",
                "(--mode loopback) or are counted and dropped (--mode sink).",
                "Serves front-end after front-end until killed. Both rings run on one worker thread.",
                "",
                "Example:",
                "  java -jar outproc-examples.jar vhost-user-net --socket-path /tmp/vun.sock --mode loopback",
                "  dpdk-testpmd --no-pci --no-huge -m 1024 --vdev 'net_virtio_user0,path=/tmp/vun.sock,queues=1' \\",
                "      -- --forward-mode=io --stats-period 1 --total-num-mbufs=32768"
        })
public final class VhostUserNetCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    BackendOptions backend;

    @Option(names = "--mode", paramLabel = "MODE", defaultValue = "loopback",
            description = "loopback or sink (default: ${DEFAULT-VALUE}).")
    String mode;

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
        VirtioNetDevice.Mode m = switch (mode.toLowerCase(java.util.Locale.ROOT)) {
            case "loopback" -> VirtioNetDevice.Mode.LOOPBACK;
            case "sink" -> VirtioNetDevice.Mode.SINK;
            default -> throw new ParameterException(spec.commandLine(), "--mode must be loopback or sink, got '" + mode + "'");
        };
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
        // Loopback moves frames from the transmit ring to the receive ring: both must share one worker.
        spec.findOption("--workers").setValue(1);
        VirtioNetDevice device = new VirtioNetDevice(m, macBytes, queueSize);
        try (VhostUserServer server = backend.start(device)) {
            System.err.println("vhost-user-net: " + m.name().toLowerCase(java.util.Locale.ROOT) + " with MAC "
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
