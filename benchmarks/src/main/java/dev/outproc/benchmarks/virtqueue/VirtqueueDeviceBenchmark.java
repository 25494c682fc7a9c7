package dev.outproc.benchmarks.virtqueue;

import dev.outproc.core.memory.Layouts;
import dev.outproc.core.virtqueue.DescriptorChain;
import dev.outproc.core.virtqueue.QueueConfig;
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

import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;
import java.util.concurrent.TimeUnit;

/**
 * (a) The device alone: pop a batch and complete it (one used publication per batch). The ring is
 * filled once by the driver; afterwards the benchmark "re-arms" consumed chains with the fewest
 * possible stores instead of running the driver: split rings bump {@code avail.idx} (the avail ring
 * already lists the heads cyclically), packed rings rewrite len/id/flags of the consumed slots for the
 * next lap. That re-arming is included in the score. EVENT_IDX on.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class VirtqueueDeviceBenchmark {
    private static final VarHandle U16 = Layouts.LE_U16_ALIGNED.varHandle();

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
    private boolean packed;
    private final DescriptorChain[] batch = new DescriptorChain[32];
    private final long[] lengths = new long[32];
    private MemorySegment avail;
    private int availIdx;
    private MemorySegment desc;
    private int[] slotLength;
    private short[] slotId;
    private short[] slotFlags;
    private int slotsPerChain;
    private int rearmSlot;
    private boolean rearmWrap;

    /**
     * Fills the ring once with the driver.
     *
     * @throws Exception when memory cannot be set up
     */
    @Setup
    public void setUp() throws Exception {
        packed = ring.equals("packed");
        setup = new RingSetup(packed, descriptors, indirect, true);
        QueueConfig c = setup.driver.config();
        int size = RingSetup.QUEUE_SIZE;
        slotsPerChain = indirect ? 1 : descriptors;
        int chains = size / slotsPerChain;
        int[] heads = new int[chains];
        for (int i = 0; i < chains; i++) {
            heads[i] = setup.postOne(i);
        }
        setup.driver.publish();
        if (packed) {
            desc = setup.region.segment().asSlice(c.descAddr() - RingSetup.BASE, 16L * size);
            slotLength = new int[size];
            slotId = new short[size];
            slotFlags = new short[size];
            for (int s = 0; s < size; s++) {
                slotLength[s] = desc.get(Layouts.LE_U32, 16L * s + 8);
                slotId[s] = desc.get(Layouts.LE_U16, 16L * s + 12);
                // Keep NEXT/WRITE/INDIRECT; AVAIL/USED are set per lap.
                slotFlags[s] = (short) (desc.get(Layouts.LE_U16, 16L * s + 14) & 0x7);
            }
            rearmSlot = 0;
            rearmWrap = false;
        } else {
            avail = setup.region.segment().asSlice(c.driverAddr() - RingSetup.BASE, 6 + 2L * size);
            for (int k = 0; k < size; k++) {
                avail.set(Layouts.LE_U16, 4 + 2L * k, (short) heads[k % chains]);
            }
            availIdx = chains;
        }
    }

    /** Unmaps the memory. */
    @TearDown
    public void tearDown() {
        setup.close();
    }

    private long serve(int n) throws Exception {
        long sum = setup.serve(n, batch, lengths);
        if (packed) {
            rearmPacked(n * slotsPerChain);
        } else {
            availIdx = (availIdx + n) & 0xffff;
            U16.setRelease(avail, 2L, (short) availIdx);
        }
        return sum;
    }

    private void rearmPacked(int slots) {
        int size = RingSetup.QUEUE_SIZE;
        for (int i = 0; i < slots; i++) {
            int s = rearmSlot;
            long at = 16L * s;
            desc.set(Layouts.LE_U32, at + 8, slotLength[s]);
            desc.set(Layouts.LE_U16, at + 12, slotId[s]);
            int bits = rearmWrap ? 1 << 7 : 1 << 15;
            U16.setRelease(desc, at + 14, (short) (slotFlags[s] | bits));
            if (++rearmSlot == size) {
                rearmSlot = 0;
                rearmWrap = !rearmWrap;
            }
        }
    }

    /**
     * Batch of one chain.
     *
     * @return a value for the blackhole
     * @throws Exception never in a correct run
     */
    @Benchmark
    public long batch1() throws Exception {
        return serve(1);
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
        return serve(32);
    }
}
