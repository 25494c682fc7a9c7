package dev.outproc.benchmarks.blk;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtio.blk.BlkRequestDriver;
import dev.outproc.core.virtio.blk.VirtioBlk;
import dev.outproc.core.virtqueue.GpaAllocator;
import dev.outproc.core.virtqueue.SplitDriverQueue;
import dev.outproc.vhost.frontend.FrontendQueue;
import dev.outproc.vhost.frontend.VhostUserFrontend;
import dev.outproc.vhost.message.ProtocolFeature;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static dev.outproc.core.memory.Layouts.LE_U64;

/**
 * A vhost-user-blk load generator: our front-end drives any vhost-user-blk back-end (outproc's,
 * qemu-storage-daemon's export) with random reads or writes of one block size, a fixed number of
 * requests in flight per queue, one thread per queue. Prints one line:
 * {@code iops=N p50_us=N p99_us=N requests=N errors=N}.
 *
 * <pre>
 * java -cp benchmarks.jar dev.outproc.benchmarks.blk.BlkLoad --socket S [--queues 1] [--depth 1]
 *      [--op read|write] [--block 4096] [--seconds 5] [--warmup 1] [--seed N]
 * </pre>
 * Latency is from posting a request to reaping its completion, in the thread that posted it. The
 * request's status is checked; a failed request counts as an error.
 */
public final class BlkLoad {
    private static final long GUEST_BASE = 0x1_0000_0000L;
    private static final long USER_BASE = 0x7e00_0000_0000L;
    private static final int QUEUE_SIZE = 256;
    private static final int MAX_SAMPLES = 1 << 22;

    private BlkLoad() {
    }

    /** The figures of one queue's thread. */
    private static final class Worker implements Runnable {
        final BlkRequestDriver driver;
        final int depth;
        final boolean write;
        final int blockBytes;
        final long blocks;
        final SplittableRandom random;
        final long[] submitted;
        final long[] latencies = new long[MAX_SAMPLES];
        int samples;
        long requests;
        long errors;
        volatile boolean measuring;
        volatile boolean stop;
        Throwable failure;

        Worker(BlkRequestDriver driver, int depth, boolean write, int blockBytes, long blocks, long seed) {
            this.driver = driver;
            this.depth = depth;
            this.write = write;
            this.blockBytes = blockBytes;
            this.blocks = blocks;
            this.random = new SplittableRandom(seed);
            this.submitted = new long[depth];
        }

        private void submit(int slot) throws IOException {
            long sector = random.nextLong(blocks) * (blockBytes / VirtioBlk.SECTOR_SIZE);
            submitted[slot] = System.nanoTime();
            driver.submit(slot, write ? VirtioBlk.T_OUT : VirtioBlk.T_IN, sector, blockBytes, !write);
        }

        @Override
        public void run() {
            try {
                for (int s = 0; s < depth; s++) {
                    submit(s);
                }
                driver.kick();
                while (!stop) {
                    int slot = driver.awaitCompletion();
                    long now = System.nanoTime();
                    if (measuring) {
                        requests++;
                        if (driver.status(slot) != VirtioBlk.S_OK) {
                            errors++;
                        }
                        if (samples < MAX_SAMPLES) {
                            latencies[samples++] = now - submitted[slot];
                        }
                    }
                    submit(slot);
                    driver.kick();
                }
                while (driver.busySlots() > 0) {
                    driver.awaitCompletion();
                }
            } catch (Throwable t) {
                failure = t;
            }
        }
    }

    /**
     * Runs the load.
     *
     * @param args see the class description
     * @throws Exception when the back-end fails
     */
    public static void main(String[] args) throws Exception {
        Path socket = null;
        int queues = 1;
        int depth = 1;
        boolean write = false;
        int blockBytes = 4096;
        double seconds = 5;
        double warmup = 1;
        long seed = System.nanoTime();
        for (int i = 0; i < args.length; i++) {
            String v = i + 1 < args.length ? args[i + 1] : null;
            switch (args[i]) {
                case "--socket" -> socket = Path.of(v);
                case "--queues" -> queues = Integer.parseInt(v);
                case "--depth" -> depth = Integer.parseInt(v);
                case "--op" -> write = switch (v) {
                    case "read" -> false;
                    case "write" -> true;
                    default -> throw new IllegalArgumentException("--op is read or write, got " + v);
                };
                case "--block" -> blockBytes = Integer.parseInt(v);
                case "--seconds" -> seconds = Double.parseDouble(v);
                case "--warmup" -> warmup = Double.parseDouble(v);
                case "--seed" -> seed = Long.parseLong(v);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
            i++;
        }
        if (socket == null) {
            throw new IllegalArgumentException("--socket is required");
        }
        System.err.println("BlkLoad: seed " + seed);
        try (VhostUserFrontend frontend = VhostUserFrontend.connect(socket)) {
            long wanted = VirtioFeature.maskOf(VirtioFeature.VERSION_1, VirtioFeature.EVENT_IDX,
                    VirtioFeature.INDIRECT_DESC) | 1L << VirtioBlk.F_MQ | 1L << VirtioBlk.F_BLK_SIZE
                    | 1L << VirtioBlk.F_SEG_MAX | 1L << VirtioBlk.F_FLUSH;
            long acked = frontend.negotiate(wanted, ProtocolFeature.maskOf(ProtocolFeature.MQ,
                    ProtocolFeature.REPLY_ACK, ProtocolFeature.CONFIG));
            if (queues > 1 && (acked & 1L << VirtioBlk.F_MQ) == 0) {
                throw new IOException("the back-end does not offer VIRTIO_BLK_F_MQ; cannot use " + queues + " queues");
            }
            long perQueue = 64 * 1024 + BlkRequestDriver.slotBytes(blockBytes) * depth;
            long memoryBytes = ((perQueue * queues) + (2 << 20) - 1) / (2 << 20) * (2 << 20);
            try (GuestRegion region = GuestRegion.allocate(GUEST_BASE, memoryBytes, USER_BASE)) {
                GuestMemory memory = GuestMemory.of(List.of(region));
                frontend.setMemTable(memory);
                GpaAllocator allocator = new GpaAllocator(GUEST_BASE, GUEST_BASE + memoryBytes);
                long queueFeatures = acked & VirtioFeature.maskOf(VirtioFeature.EVENT_IDX, VirtioFeature.INDIRECT_DESC);
                long capacity = java.lang.foreign.MemorySegment.ofArray(frontend.getConfig(VirtioBlk.CONFIG_CAPACITY_OFFSET, 8)).get(LE_U64, 0);
                long blocks = capacity * VirtioBlk.SECTOR_SIZE / blockBytes;
                if (blocks < 1) {
                    throw new IOException("the disk has fewer than one block of " + blockBytes + " bytes");
                }
                List<Worker> workers = new ArrayList<>();
                List<FrontendQueue> started = new ArrayList<>();
                for (int q = 0; q < queues; q++) {
                    SplitDriverQueue dq = SplitDriverQueue.allocate("blk-req-" + q, memory, allocator, QUEUE_SIZE,
                            queueFeatures, 0);
                    FrontendQueue fq = frontend.startQueue(q, dq, memory);
                    started.add(fq);
                    BlkRequestDriver driver = new BlkRequestDriver(memory, allocator, dq, new BlkRequestDriver.Doorbell() {
                        @Override
                        public void publishAndKick() throws IOException {
                            fq.publishAndKick();
                        }

                        @Override
                        public void awaitNotification(long timeoutMillis) throws IOException {
                            fq.awaitCall(timeoutMillis);
                        }
                    }, depth, blockBytes, 10_000);
                    workers.add(new Worker(driver, depth, write, blockBytes, blocks, seed + q));
                }
                List<Thread> threads = new ArrayList<>();
                for (int q = 0; q < queues; q++) {
                    threads.add(Thread.ofPlatform().name("blk-load-" + q).start(workers.get(q)));
                }
                Thread.sleep((long) (warmup * 1000));
                for (Worker w : workers) {
                    w.measuring = true;
                }
                long start = System.nanoTime();
                Thread.sleep((long) (seconds * 1000));
                for (Worker w : workers) {
                    w.measuring = false;
                }
                long elapsed = System.nanoTime() - start;
                for (Worker w : workers) {
                    w.stop = true;
                }
                for (Thread t : threads) {
                    t.join(30_000);
                }
                long requests = 0;
                long errors = 0;
                int total = 0;
                for (Worker w : workers) {
                    if (w.failure != null) {
                        throw new IOException("queue " + workers.indexOf(w) + " failed: " + w.failure, w.failure);
                    }
                    requests += w.requests;
                    errors += w.errors;
                    total += w.samples;
                }
                long[] all = new long[total];
                int at = 0;
                for (Worker w : workers) {
                    System.arraycopy(w.latencies, 0, all, at, w.samples);
                    at += w.samples;
                }
                Arrays.sort(all);
                System.out.printf("iops=%.0f p50_us=%.1f p99_us=%.1f requests=%d errors=%d%n",
                        requests * 1e9 / elapsed, percentile(all, 0.50) / 1e3, percentile(all, 0.99) / 1e3,
                        requests, errors);
                for (FrontendQueue fq : started) {
                    fq.close();
                }
            }
        }
    }

    private static double percentile(long[] sorted, double p) {
        if (sorted.length == 0) {
            return Double.NaN;
        }
        return sorted[Math.min(sorted.length - 1, (int) Math.floor(p * sorted.length))];
    }
}
