package dev.outproc.examples.probe;

import dev.outproc.vhost.message.VhostUserFeature;
import dev.outproc.vhost.frontend.FrontendException;
import dev.outproc.vhost.frontend.VhostUserFrontend;
import dev.outproc.vhost.frontend.VirtioBlkDriver;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.vhost.testkit.DeviceTestBench;
import dev.outproc.vhost.testkit.TestQueue;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.zip.CRC32C;

import static dev.outproc.core.memory.Layouts.LE_U16;
import static dev.outproc.core.memory.Layouts.LE_U32;
import static dev.outproc.core.memory.Layouts.LE_U64;

/** {@code vhost-user-probe}: what a vhost-user back-end offers, and an optional block I/O check. */
@Command(name = "vhost-user-probe", mixinStandardHelpOptions = true,
        description = {
                "Connects to any vhost-user back-end and prints what it offers.",
                "",
                "It prints the features, protocol features, queue count and configuration",
                "space (decoded for virtio-blk).",
                "",
                "With --read-queue Q --count K it posts K device-writable buffers on",
                "queue Q of any device and prints what the device wrote into them",
                "(virtio-rng fills them, a virtio-net receive queue waits for frames).",
                "",
                "With --blk-test N it runs N checksummed 4 KiB write/read pairs",
                "through a virtio-blk back-end.",
                "This OVERWRITES the first N*4 KiB of the disk."
        })
public final class VhostUserProbeCommand implements Callable<Integer> {
    /** Feature bits 0-23: the device type's own (VIRTIO 1.2 §6). */
    private static final long DEVICE_BITS = (1L << 24) - 1;

    @Option(names = "--socket-path", paramLabel = "PATH", required = true, description = "The back-end's socket.")
    Path socketPath;

    @Option(names = "--config-size", paramLabel = "BYTES", defaultValue = "60",
            description = "Configuration bytes to read with GET_CONFIG (default: ${DEFAULT-VALUE}, virtio-blk's size).")
    int configSize;

    @Option(names = "--blk-test", paramLabel = "N", defaultValue = "0",
            description = "Run N checksummed 4 KiB write/read pairs (virtio-blk back-ends only; overwrites data).")
    int blkTest;

    @Option(names = "--packed", description = "Use a packed ring for --blk-test when the back-end offers it.")
    boolean packed;

    @Option(names = "--read-queue", paramLabel = "Q", defaultValue = "-1",
            description = "Post --count device-writable buffers on queue Q of any device and show what it wrote.")
    int readQueue;

    @Option(names = "--count", paramLabel = "K", defaultValue = "1",
            description = "Buffers for --read-queue (default: ${DEFAULT-VALUE}).")
    int count;

    @Option(names = "--buffer-bytes", paramLabel = "BYTES", defaultValue = "64",
            description = "Size of each --read-queue buffer (default: ${DEFAULT-VALUE}).")
    int bufferBytes;

    @Option(names = "--timeout-ms", paramLabel = "MS", defaultValue = "10000", description = "Reply timeout (default: ${DEFAULT-VALUE}).")
    int timeoutMillis;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        if (readQueue >= 0 && (count < 1 || count > 64 || bufferBytes < 1 || bufferBytes > 64 * 1024)) {
            throw new ParameterException(spec.commandLine(), "--count must be 1..64 and --buffer-bytes 1..65536, got --count "
                    + count + " --buffer-bytes " + bufferBytes);
        }
        PrintStream out = System.out;
        try {
            int problems = probe(out);
            if (readQueue >= 0) {
                problems += readQueue(out);
            }
            if (blkTest > 0) {
                problems += blkTest(out);
            }
            return problems == 0 ? 0 : 1;
        } catch (IOException e) {
            // A missing socket, a back-end that refuses or breaks the protocol: one line, no stack trace.
            System.err.println("vhost-user-probe: " + socketPath + ": " + e.getMessage());
            return 1;
        }
    }

    /** Posts device-writable buffers on one queue and prints what the device wrote. */
    private int readQueue(PrintStream out) throws IOException {
        try (DeviceTestBench bench = DeviceTestBench.connect(socketPath, -1L)) {
            TestQueue queue = bench.startQueue(readQueue, 64, bufferBytes);
            for (int i = 0; i < count; i++) {
                queue.post(new byte[0], bufferBytes);
            }
            queue.kick();
            long total = 0;
            int used = 0;
            try {
                for (; used < count; used++) {
                    TestQueue.Used u = queue.await(timeoutMillis);
                    total += u.writtenBytes();
                    byte[] w = u.written();
                    out.printf("queue %d buffer %d: %d bytes written%s%n", readQueue, used, u.writtenBytes(),
                            w.length == 0 ? "" : ", first " + Math.min(16, w.length) + ": "
                                    + HexFormat.of().formatHex(w, 0, Math.min(16, w.length)));
                }
            } catch (IOException e) {
                out.printf("queue %d: %d of %d buffers used (%s)%n", readQueue, used, count, e.getMessage());
                return 1;
            }
            out.printf("queue %d: %d buffers used, %d bytes written%n", readQueue, used, total);
            return 0;
        }
    }

    private int probe(PrintStream out) throws IOException {
        try (VhostUserFrontend fe = VhostUserFrontend.connect(socketPath)) {
            fe.setReplyTimeoutMillis(timeoutMillis);
            long features = fe.getFeatures();
            out.printf("socket:            %s%n", socketPath);
            out.printf("features:          0x%016x%n", features);
            out.printf("                   %s%n", String.join(" ", virtioNames(features)));
            // vhost-user does not say which device it is: the device bits (0-23) are named as virtio-blk's,
            // which the front-end knows to be right or not.
            out.printf("                   device bits: %s%n", (features & DEVICE_BITS) == 0 ? "none"
                    : String.join(" ", deviceBitNumbers(features)) + " (as virtio-blk: "
                            + String.join(" ", blkNames(features)) + ")");
            if ((features & VhostUserFeature.PROTOCOL_FEATURES.mask()) == 0) {
                out.println("protocol features: none (F_PROTOCOL_FEATURES not offered)");
                return 0;
            }
            long protocol = fe.getProtocolFeatures();
            out.printf("protocol features: 0x%016x%n", protocol);
            out.printf("                   %s%n", String.join(" ", protocolNames(protocol)));
            fe.setOwner();
            long use = protocol & ProtocolFeature.maskOf(ProtocolFeature.MQ, ProtocolFeature.CONFIG,
                    ProtocolFeature.CONFIGURE_MEM_SLOTS, ProtocolFeature.STATUS);
            fe.setProtocolFeatures(use);
            if ((protocol & ProtocolFeature.MQ.mask()) != 0) {
                out.printf("queues:            %d%n", fe.getQueueNum());
            }
            if ((protocol & ProtocolFeature.CONFIGURE_MEM_SLOTS.mask()) != 0) {
                out.printf("memory slots:      %d%n", fe.getMaxMemSlots());
            }
            if ((protocol & ProtocolFeature.CONFIG.mask()) != 0 && configSize > 0) {
                try {
                    byte[] config = fe.getConfig(0, configSize);
                    out.printf("config (%d bytes): %s%n", config.length, HexFormat.of().formatHex(config));
                    if (config.length >= 60) {
                        printBlkConfig(out, MemorySegment.ofArray(config));
                    }
                } catch (FrontendException e) {
                    out.printf("config:            refused (%s)%n", e.getMessage());
                }
            }
        }
        return 0;
    }

    private static void printBlkConfig(PrintStream out, MemorySegment c) {
        long capacity = c.get(LE_U64, 0);
        out.printf("virtio-blk:        capacity %d sectors (%d MiB), seg_max %d, blk_size %d, num_queues %d%n",
                capacity, capacity * 512 >> 20, c.get(LE_U32, 12), c.get(LE_U32, 20), c.get(LE_U16, 34) & 0xffff);
        out.printf("                   max_discard_sectors %d, max_write_zeroes_sectors %d, writeback %d%n",
                Integer.toUnsignedLong(c.get(LE_U32, 36)), Integer.toUnsignedLong(c.get(LE_U32, 48)),
                c.get(ValueLayout.JAVA_BYTE, 32));
    }

    private int blkTest(PrintStream out) throws IOException {
        VhostUserFrontend fe = VhostUserFrontend.connect(socketPath);
        fe.setReplyTimeoutMillis(timeoutMillis);
        try (VirtioBlkDriver blk = VirtioBlkDriver.start(fe, 1, 4096, packed)) {
            long capacity = blk.capacitySectors();
            if (capacity < 8L * blkTest) {
                out.printf("blk test:          disk too small (%d sectors) for %d blocks%n", capacity, blkTest);
                return 1;
            }
            SplittableRandom random = new SplittableRandom();
            byte[] block = new byte[4096];
            byte[] back = new byte[4096];
            CRC32C crc = new CRC32C();
            int failures = 0;
            long start = System.nanoTime();
            for (int i = 0; i < blkTest; i++) {
                random.nextBytes(block);
                crc.reset();
                crc.update(block);
                long written = crc.getValue();
                int ws = blk.write(8L * i, block);
                int rs = blk.read(8L * i, back);
                crc.reset();
                crc.update(back);
                if (ws != 0 || rs != 0 || crc.getValue() != written) {
                    failures++;
                }
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            out.printf("blk test:          %d write/read pairs of 4 KiB, %d checksum mismatches or errors, %.0f pairs/s (%s ring)%n",
                    blkTest, failures, blkTest / seconds, (blk.features() & VirtioFeature.RING_PACKED.mask()) != 0 ? "packed" : "split");
            return failures == 0 ? 0 : 1;
        }
    }

    static List<String> virtioNames(long features) {
        List<String> names = new ArrayList<>();
        for (VirtioFeature f : VirtioFeature.values()) {
            if (f.isSetIn(features)) {
                names.add(f.name());
            }
        }
        return names;
    }

    static List<String> protocolNames(long features) {
        List<String> names = new ArrayList<>();
        for (ProtocolFeature f : ProtocolFeature.values()) {
            if (f.isSetIn(features)) {
                names.add(f.name());
            }
        }
        long unknown = features & ~ProtocolFeature.KNOWN_MASK;
        if (unknown != 0) {
            names.add("unknown:0x" + Long.toHexString(unknown));
        }
        return names;
    }

    /** {@return the numbers of the device-specific feature bits (0-23) set in {@code features}} */
    static List<String> deviceBitNumbers(long features) {
        List<String> out = new ArrayList<>();
        for (int bit = 0; bit < 24; bit++) {
            if ((features & (1L << bit)) != 0) {
                out.add(Integer.toString(bit));
            }
        }
        return out;
    }

    static List<String> blkNames(long features) {
        String[] names = {null, "SIZE_MAX", "SEG_MAX", null, "GEOMETRY", "RO", "BLK_SIZE", null, null, "FLUSH",
                "TOPOLOGY", "CONFIG_WCE", "MQ", "DISCARD", "WRITE_ZEROES", "LIFETIME", "SECURE_ERASE", "ZONED"};
        List<String> out = new ArrayList<>();
        for (int bit = 0; bit < 24; bit++) {
            if ((features & (1L << bit)) != 0) {
                out.add(bit < names.length && names[bit] != null ? names[bit] : "bit" + bit);
            }
        }
        return out;
    }
}
