package dev.outproc.vhost.interop;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A running DPDK {@code dpdk-testpmd}: the real vhost-user-net peer, either as back-end
 * ({@code net_vhost}, listening on the socket) or as front-end ({@code net_virtio_user}, connecting).
 *
 * <p>Command line (per the project's peer notes: no hugepages, so the mbuf pool is sized explicitly;
 * one CPU per process on a two-CPU machine; a distinct {@code --file-prefix} per process; a stats
 * period, without which testpmd exits at stdin EOF):
 * <pre>
 * dpdk-testpmd --no-pci --no-huge -m 1024 --file-prefix PREFIX --lcores 0@CPU,1@CPU
 *   --vdev 'net_vhost0,iface=SOCKET,queues=1'        (back-end)
 *   --vdev 'net_virtio_user0,path=SOCKET,queues=1'   (front-end)
 *   -- --forward-mode=MODE --txpkts=64 --nb-cores=1 --stats-period 1 --total-num-mbufs=32768
 * </pre>
 */
public final class Testpmd implements AutoCloseable {

    /** Longest wait for testpmd to start forwarding. */
    public static final Duration START_TIMEOUT = Duration.ofSeconds(30);

    private static final AtomicInteger PREFIX_COUNTER = new AtomicInteger();
    private static final Pattern RX_PACKETS = Pattern.compile("RX-packets:\\s+(\\d+)");
    private static final Pattern TX_PACKETS = Pattern.compile("TX-packets:\\s+(\\d+)");

    private final PeerProcess process;
    private final Path socket;
    private final String filePrefix;

    private Testpmd(PeerProcess process, Path socket, String filePrefix) {
        this.process = process;
        this.socket = socket;
        this.filePrefix = filePrefix;
    }

    /**
     * Testpmd as vhost-user back-end: it listens on {@code socket} ({@code net_vhost}).
     *
     * @param socket where to listen (at most about 100 bytes long)
     * @param directory where the log goes
     * @return the builder
     */
    public static Builder backEnd(Path socket, Path directory) {
        return new Builder(true, socket, directory);
    }

    /**
     * Testpmd as vhost-user front-end: it connects to a back-end on {@code socket} ({@code net_virtio_user}).
     *
     * @param socket the back-end's socket
     * @param directory where the log goes
     * @return the builder
     */
    public static Builder frontEnd(Path socket, Path directory) {
        return new Builder(false, socket, directory);
    }

    /** {@return the vhost-user socket} */
    public Path socket() {
        return socket;
    }

    /** {@return the log (stdout+stderr)} */
    public Path log() {
        return process.log();
    }

    /** {@return the log's content so far} */
    public String output() {
        return process.logText();
    }

    /** {@return the command line} */
    public String commandLine() {
        return process.commandLine();
    }

    /** {@return whether testpmd still runs} */
    public boolean isAlive() {
        return process.process().isAlive();
    }

    /** {@return command, state and log tail, for failure messages} */
    public String describe() {
        return process.describe();
    }

    /** {@return the last {@code RX-packets} figure testpmd printed (periodic or final statistics)} */
    public OptionalLong lastRxPackets() {
        return last(RX_PACKETS);
    }

    /** {@return the last {@code TX-packets} figure testpmd printed} */
    public OptionalLong lastTxPackets() {
        return last(TX_PACKETS);
    }

    /**
     * Waits until the log contains {@code text}; fails early if testpmd exits.
     *
     * @param text what to wait for
     * @param timeout the longest wait
     * @throws IOException naming the log when the text does not appear in time
     */
    public void awaitOutput(String text, Duration timeout) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!process.logText().contains(text)) {
            if (!process.process().isAlive() && !process.logText().contains(text)) {
                throw new IOException("testpmd exited before printing '" + text + "': " + describe());
            }
            if (System.nanoTime() - deadline > 0) {
                throw new IOException("testpmd did not print '" + text + "' within " + timeout + ": " + describe());
            }
            PeerProcess.sleepMillis(50);
        }
    }

    /** Stops testpmd: SIGTERM makes it print its final statistics and exit; SIGKILL after a bounded wait. */
    @Override
    public void close() {
        process.close();
        // DPDK leaves its runtime directory (config, mp socket) behind; one per run adds up.
        String xdg = System.getenv("XDG_RUNTIME_DIR");
        for (Path base : xdg == null ? List.of(Path.of("/var/run/dpdk"))
                : List.of(Path.of("/var/run/dpdk"), Path.of(xdg, "dpdk"))) {
            deleteTree(base.resolve(filePrefix));
        }
    }

    private static void deleteTree(Path dir) {
        if (!Files.isDirectory(dir)) {
            return;
        }
        try (var files = Files.walk(dir)) {
            for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            System.getLogger(Testpmd.class.getName()).log(System.Logger.Level.DEBUG,
                    () -> "cannot remove DPDK runtime directory " + dir, e);
        }
    }

    private OptionalLong last(Pattern pattern) {
        Matcher m = pattern.matcher(process.logText());
        long value = -1;
        while (m.find()) {
            value = Long.parseLong(m.group(1));
        }
        return value < 0 ? OptionalLong.empty() : OptionalLong.of(value);
    }

    /** Configures and starts a {@link Testpmd}. */
    public static final class Builder {
        private final boolean backEnd;
        private final Path socket;
        private final Path directory;
        private String forwardMode;
        private int cpu;
        private int packetBytes = 64;
        private int queues = 1;
        private String name;
        private final List<String> extraArgs = new ArrayList<>();

        private Builder(boolean backEnd, Path socket, Path directory) {
            this.backEnd = backEnd;
            this.socket = socket.toAbsolutePath();
            this.directory = directory.toAbsolutePath();
            this.forwardMode = backEnd ? "rxonly" : "txonly";
            this.cpu = backEnd ? 0 : 1;
            this.name = backEnd ? "testpmd-backend" : "testpmd-frontend";
        }

        /**
         * @param forwardMode {@code txonly}, {@code rxonly}, {@code io}, {@code icmpecho}, ...
         * @return this
         */
        public Builder forwardMode(String forwardMode) {
            this.forwardMode = forwardMode;
            return this;
        }

        /**
         * @param cpu the host CPU both lcores are pinned to (one per process on two CPUs)
         * @return this
         */
        public Builder cpu(int cpu) {
            this.cpu = cpu;
            return this;
        }

        /**
         * @param packetBytes packet size in {@code txonly} mode
         * @return this
         */
        public Builder packetBytes(int packetBytes) {
            this.packetBytes = packetBytes;
            return this;
        }

        /**
         * @param queues queue pairs of the vhost-user device
         * @return this
         */
        public Builder queues(int queues) {
            this.queues = queues;
            return this;
        }

        /**
         * @param name base name of the log and of the DPDK {@code --file-prefix}
         * @return this
         */
        public Builder name(String name) {
            this.name = name;
            return this;
        }

        /**
         * Adds testpmd application arguments (after {@code --}).
         *
         * @param args the arguments
         * @return this
         */
        public Builder args(String... args) {
            extraArgs.addAll(List.of(args));
            return this;
        }

        /**
         * Starts testpmd and waits until it forwards (for a back-end this means it listens). Fails or
         * skips (see {@link Peers#require(String)}) when testpmd is not installed.
         *
         * @return the running testpmd
         * @throws IOException when it does not start within {@link #START_TIMEOUT}
         */
        public Testpmd start() throws IOException {
            Path testpmd = Peers.require(Peers.TESTPMD);
            Files.createDirectories(directory);
            if (backEnd) {
                Files.deleteIfExists(socket);
            }
            // Distinct per process: DPDK keeps runtime state in /var/run/dpdk/<prefix>.
            String prefix = "outproc-" + ProcessHandle.current().pid() + "-" + PREFIX_COUNTER.incrementAndGet();
            String vdev = backEnd
                    ? "net_vhost0,iface=" + socket + ",queues=" + queues
                    : "net_virtio_user0,path=" + socket + ",queues=" + queues;
            List<String> cmd = new ArrayList<>(List.of(testpmd.toString(),
                    "--no-pci", "--no-huge", "-m", "1024", "--file-prefix", prefix,
                    "--lcores", "0@" + cpu + ",1@" + cpu, "--vdev", vdev,
                    "--", "--forward-mode=" + forwardMode, "--txpkts=" + packetBytes, "--nb-cores=1",
                    "--stats-period", "1", "--total-num-mbufs=32768"));
            cmd.addAll(extraArgs);
            PeerProcess p = PeerProcess.start("dpdk-testpmd", cmd, directory.resolve(name + ".log"));
            Testpmd t = new Testpmd(p, socket, prefix);
            try {
                t.awaitOutput("start packet forwarding", START_TIMEOUT);
            } catch (IOException | RuntimeException e) {
                t.close();
                throw e;
            }
            return t;
        }
    }
}
