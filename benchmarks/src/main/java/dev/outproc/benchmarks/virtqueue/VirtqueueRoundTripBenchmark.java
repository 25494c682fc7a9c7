package dev.outproc.benchmarks.virtqueue;

import dev.outproc.core.virtqueue.DescriptorChain;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.util.concurrent.TimeUnit;

/**
 * (b) A full round trip in one thread, per chain: the driver posts a batch and publishes, decides on a
 * kick (full fence), the device pops and completes every chain (one used-index publication per batch),
 * decides on a notification (full fence), the driver reaps the batch. EVENT_IDX on. This is the figure
 * compared with the C program {@code benchmarks/c/virtqueue_bench.c}, which runs the same loop.
 * Score: ns per chain; {@code -prof gc} shows {@code gc.alloc.rate.norm} per chain.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class VirtqueueRoundTripBenchmark {
    /** Ring format. */
    @Param({"split", "packed"})
    public String ring;

    /** Descriptors per chain. */
    @Param({"1", "4"})
    public int descriptors;

    /** Whether chains go through an indirect table. */
    @Param({"false", "true"})
    public boolean indirect;

    private RingSetup setup;
    private final DescriptorChain[] batch = new DescriptorChain[32];
    private final long[] lengths = new long[32];

    /**
     * Builds the ring.
     *
     * @throws Exception when memory cannot be set up
     */
    @Setup
    public void setUp() throws Exception {
        setup = new RingSetup(ring.equals("packed"), descriptors, indirect, true);
    }

    /** Unmaps the memory. */
    @TearDown
    public void tearDown() {
        setup.close();
    }

    private long roundTrip(int n) throws Exception {
        RingSetup s = setup;
        long sum = 0;
        for (int i = 0; i < n; i++) {
            sum += s.postOne(i);
        }
        s.driver.publish();
        boolean kick = s.driver.kickNeeded();
        sum += s.serve(n, batch, lengths);
        boolean call = s.device.needsNotification();
        for (int i = 0; i < n; i++) {
            sum += s.driver.pollUsed();
        }
        return sum + (kick ? 1 : 0) + (call ? 2 : 0);
    }

    /**
     * Batch of one chain.
     *
     * @return a value for the blackhole
     * @throws Exception never in a correct run
     */
    @Benchmark
    public long batch1() throws Exception {
        return roundTrip(1);
    }

    /**
     * Batch of 32 chains.
     *
     * @return a value for the blackhole
     * @throws Exception never in a correct run
     */
    @Benchmark
    @OperationsPerInvocation(32)
    public long batch32() throws Exception {
        return roundTrip(32);
    }
}
