package dev.outproc.core.virtqueue;

import dev.outproc.core.virtio.VirtioFeature;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Model-based property test: a driver posts random chains (counts, lengths, directions, some indirect),
 * the device pops them, checks every readable byte against the model, writes a pattern into the writable
 * buffers and completes them in random order and batch sizes; the driver checks every id, length and byte.
 * Notification suppression is checked both ways, and the device queue is moved through
 * exportState/importState now and then. Each run reports its seed on failure.
 */
class VirtqueueModelTest {
    private static final int MAX_BUFFERS = 6;
    private static final int MAX_BUFFER_BYTES = 300;
    private static final int MAX_INDIRECT = 8;
    private static final byte UNTOUCHED = (byte) 0xEE;

    static Stream<Arguments> runs() {
        List<Arguments> runs = new ArrayList<>();
        long base = Long.getLong("virtqueue.seed", 0x5eed_2026L);
        SplittableRandom seeds = new SplittableRandom(base);
        for (boolean packed : new boolean[] {false, true}) {
            for (boolean eventIdx : new boolean[] {false, true}) {
                // One long run per configuration wraps the 16-bit indices (more than 65536 chains).
                runs.add(Arguments.of(packed, eventIdx, false, seeds.nextLong(), 70_000));
                runs.add(Arguments.of(packed, eventIdx, true, seeds.nextLong(), 5_000));
                for (int i = 0; i < 3; i++) {
                    runs.add(Arguments.of(packed, eventIdx, false, seeds.nextLong(), 5_000));
                }
            }
        }
        return runs.stream();
    }

    /** What the driver posted for one chain. */
    private static final class Posted {
        int slot;
        long[] gpa;
        int[] length;
        boolean[] writable;
        byte[] readable;
        byte[] expectedWritten;
    }

    @ParameterizedTest(name = "packed={0} eventIdx={1} inOrder={2} seed={3} chains={4}")
    @MethodSource("runs")
    void shouldDeliverEveryChainAndEveryByte(boolean packed, boolean eventIdx, boolean inOrder, long seed, int chains)
            throws Exception {
        String where = "seed=" + seed + ", packed=" + packed + ", eventIdx=" + eventIdx + ", inOrder=" + inOrder;
        SplittableRandom random = new SplittableRandom(seed);
        int[] sizes = packed ? new int[] {3, 8, 61, 256} : new int[] {4, 8, 64, 256};
        int size = sizes[random.nextInt(sizes.length)];
        long features = VirtioFeature.INDIRECT_DESC.mask() | (eventIdx ? VirtioFeature.EVENT_IDX.mask() : 0)
                | (inOrder ? VirtioFeature.IN_ORDER.mask() : 0);
        long slotBytes = (long) MAX_BUFFERS * MAX_BUFFER_BYTES;
        try (GuestRam ram = new GuestRam(8L << 20)) {
            Rig rig = Rig.create(ram, packed, size, features, MAX_INDIRECT);
            DeviceQueue device = rig.device();
            DriverQueue driver = rig.driver();
            long dataBase = ram.allocator.allocate(slotBytes * size, 64);
            ArrayDeque<Integer> freeSlots = new ArrayDeque<>();
            for (int i = 0; i < size; i++) {
                freeSlots.add(i);
            }
            Map<Integer, Posted> model = new HashMap<>();
            List<DescriptorChain> held = new ArrayList<>();
            boolean deviceWantsKicks = true;
            boolean driverWantsCalls = true;
            // "Sleeping": the side asked for notifications and its re-check found nothing to do, so it
            // relies on the other side's notification decision from here on.
            boolean deviceSleeping = !device.enableNotifications();
            boolean driverSleeping = !driver.enableUsedNotifications();
            int completed = 0;
            int posted = 0;
            while (completed < chains) {
                // Driver: post a random number of chains.
                int toPost = random.nextInt(1, size + 1);
                int postedNow = 0;
                for (int k = 0; k < toPost && posted < chains && !freeSlots.isEmpty(); k++) {
                    Posted p = randomChain(random, ram, dataBase + slotBytes * freeSlots.peek(), size);
                    boolean indirect = p.gpa.length <= MAX_INDIRECT && random.nextInt(4) == 0;
                    for (int i = 0; i < p.gpa.length; i++) {
                        driver.add(p.gpa[i], p.length[i], p.writable[i]);
                    }
                    int id = driver.post(indirect);
                    if (id < 0) {
                        driver.clearStaged();
                        break;
                    }
                    p.slot = freeSlots.poll();
                    assertFalse(model.containsKey(id), where + ": driver reused id " + id);
                    model.put(id, p);
                    posted++;
                    postedNow++;
                }
                driver.publish();
                boolean kick = driver.kickNeeded();
                if (postedNow > 0 && deviceSleeping) {
                    assertTrue(kick, where + ": device sleeps waiting for a kick but the driver decided not to kick");
                    // With EVENT_IDX one kick per enable; with flags every publish kicks while enabled.
                    deviceSleeping = !eventIdx;
                }
                if (postedNow > 0 && !deviceWantsKicks && !eventIdx) {
                    assertFalse(kick, where + ": device disabled kicks (NO_NOTIFY) but driver kicked");
                }
                // Device: pop some or all.
                int toPop = random.nextInt(4) == 0 ? random.nextInt(size + 1) : Integer.MAX_VALUE;
                for (int n = 0; n < toPop; n++) {
                    DescriptorChain c = device.pop();
                    if (c == null) {
                        break;
                    }
                    Posted p = model.get(c.id());
                    assertNotNull(p, where + ": device popped unknown id " + c.id());
                    checkChain(where, random, c, p);
                    held.add(c);
                }
                if (deviceWantsKicks) {
                    deviceSleeping = !device.enableNotifications();
                }
                // Device: complete a random subset in random order and batches.
                int toComplete = held.isEmpty() ? 0 : random.nextInt(held.size() + 1);
                if (!inOrder) {
                    shuffle(random, held);
                }
                DescriptorChain[] batch = new DescriptorChain[toComplete];
                long[] lengths = new long[toComplete];
                int done = 0;
                while (done < toComplete) {
                    int batchSize = random.nextInt(1, toComplete - done + 1);
                    for (int b = 0; b < batchSize; b++) {
                        DescriptorChain c = held.get(done + b);
                        batch[b] = c;
                        lengths[b] = writePattern(random, c, model.get(c.id()));
                    }
                    switch (random.nextInt(3)) {
                        case 0 -> device.addUsedBatch(batch, lengths, batchSize);
                        case 1 -> {
                            for (int b = 0; b < batchSize; b++) {
                                device.addUsed(batch[b], lengths[b]);
                            }
                        }
                        default -> {
                            for (int b = 0; b < batchSize; b++) {
                                device.stageUsed(batch[b], lengths[b]);
                            }
                            device.publishUsed();
                        }
                    }
                    done += batchSize;
                    boolean call = device.needsNotification();
                    if (driverSleeping) {
                        assertTrue(call, where + ": driver sleeps waiting for a used notification but the device decided not to notify");
                        driverSleeping = !eventIdx;
                    }
                    if (!driverWantsCalls && !eventIdx) {
                        assertFalse(call, where + ": driver disabled notifications (NO_INTERRUPT) but device notified");
                    }
                }
                held.subList(0, toComplete).clear();
                // Driver: reap everything and verify.
                long used;
                while ((used = driver.pollUsed()) != DriverQueue.NONE) {
                    int id = DriverQueue.usedId(used);
                    Posted p = model.remove(id);
                    assertNotNull(p, where + ": driver reaped unknown or duplicate id " + id);
                    assertEquals(p.expectedWritten.length, DriverQueue.usedLength(used), where + ": used length of id " + id);
                    checkBytesAfterCompletion(where, ram, p);
                    freeSlots.add(p.slot);
                    completed++;
                }
                if (driverWantsCalls) {
                    driverSleeping = !driver.enableUsedNotifications();
                }
                // Toggle suppression now and then.
                if (random.nextInt(8) == 0) {
                    driverWantsCalls = !driverWantsCalls;
                    if (driverWantsCalls) {
                        driverSleeping = !driver.enableUsedNotifications();
                    } else {
                        driver.disableUsedNotifications();
                        driverSleeping = false;
                    }
                }
                if (random.nextInt(8) == 0) {
                    deviceWantsKicks = !deviceWantsKicks;
                    if (deviceWantsKicks) {
                        deviceSleeping = !device.enableNotifications();
                    } else {
                        device.disableNotifications();
                        deviceSleeping = false;
                    }
                }
                // Migrate the device side now and then (only with nothing in flight: chains are not part of the state).
                if (held.isEmpty() && random.nextInt(50) == 0) {
                    QueueState state = device.exportState();
                    DeviceQueue moved = packed ? new PackedQueue("moved") : new SplitQueue("moved");
                    moved.importState(driver.config(), state, ram.memory);
                    assertEquals(state, moved.exportState(), where + ": state round trip");
                    device = moved;
                    if (deviceWantsKicks) {
                        deviceSleeping = !device.enableNotifications();
                    } else {
                        device.disableNotifications();
                        deviceSleeping = false;
                    }
                }
            }
            assertTrue(model.isEmpty(), where + ": chains never completed: " + model.keySet());
            assertEquals(0, driver.inFlightCount(), where);
            assertEquals(0, device.inFlightCount(), where);
            assertFalse(device.isBroken(), where);
            assertEquals(null, device.pop(), where + ": device found a chain that was never posted");
        }
    }

    private static Posted randomChain(SplittableRandom random, GuestRam ram, long slotGpa, int size) {
        int n = random.nextInt(1, Math.min(MAX_BUFFERS, size) + 1);
        int readable = random.nextInt(n + 1);
        Posted p = new Posted();
        p.gpa = new long[n];
        p.length = new int[n];
        p.writable = new boolean[n];
        int totalReadable = 0;
        for (int i = 0; i < n; i++) {
            p.gpa[i] = slotGpa + (long) i * MAX_BUFFER_BYTES;
            p.length[i] = random.nextInt(8) == 0 ? 0 : random.nextInt(1, MAX_BUFFER_BYTES + 1);
            p.writable[i] = i >= readable;
            if (!p.writable[i]) {
                totalReadable += p.length[i];
            }
        }
        p.readable = new byte[totalReadable];
        random.nextBytes(p.readable);
        int at = 0;
        for (int i = 0; i < n; i++) {
            MemorySegment buffer = ram.at(p.gpa[i], p.length[i]);
            if (p.writable[i]) {
                buffer.fill(UNTOUCHED);
            } else {
                MemorySegment.copy(MemorySegment.ofArray(p.readable), at, buffer, 0, p.length[i]);
                at += p.length[i];
            }
        }
        return p;
    }

    private static void checkChain(String where, SplittableRandom random, DescriptorChain c, Posted p) throws Exception {
        assertEquals(p.gpa.length, c.bufferCount(), where + ": buffer count of id " + c.id());
        long writable = 0;
        for (int i = 0; i < p.gpa.length; i++) {
            assertEquals(p.gpa[i], c.address(i), where + ": address of buffer " + i);
            assertEquals(p.length[i], c.length(i), where + ": length of buffer " + i);
            assertEquals(p.writable[i], c.isWritable(i), where + ": direction of buffer " + i);
            if (p.writable[i]) {
                writable += p.length[i];
            }
            assertEquals(p.length[i], c.segment(i).byteSize(), where);
            assertEquals(c.regionSegment(i).asSlice(c.regionOffset(i), p.length[i]).address(), c.segment(i).address(), where);
        }
        assertEquals(p.readable.length, c.totalReadable(), where);
        assertEquals(writable, c.totalWritable(), where);
        // Read the readable stream in two random pieces to cross buffer boundaries.
        byte[] got = new byte[p.readable.length];
        int split = random.nextInt(got.length + 1);
        c.readReadable(0, MemorySegment.ofArray(got), 0, split);
        c.readReadable(split, MemorySegment.ofArray(got), split, got.length - split);
        assertArrayEquals(p.readable, got, where + ": readable bytes of id " + c.id());
    }

    private static long writePattern(SplittableRandom random, DescriptorChain c, Posted p) throws Exception {
        int written = (int) random.nextLong(c.totalWritable() + 1);
        p.expectedWritten = new byte[written];
        random.nextBytes(p.expectedWritten);
        int split = random.nextInt(written + 1);
        c.writeWritable(0, MemorySegment.ofArray(p.expectedWritten), 0, split);
        c.writeWritable(split, MemorySegment.ofArray(p.expectedWritten), split, written - split);
        return written;
    }

    private static void checkBytesAfterCompletion(String where, GuestRam ram, Posted p) {
        int readAt = 0;
        int writeAt = 0;
        for (int i = 0; i < p.gpa.length; i++) {
            byte[] actual = ram.at(p.gpa[i], p.length[i]).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
            byte[] expected = new byte[p.length[i]];
            if (p.writable[i]) {
                Arrays.fill(expected, UNTOUCHED);
                int n = Math.max(0, Math.min(p.length[i], p.expectedWritten.length - writeAt));
                if (n > 0) {
                    System.arraycopy(p.expectedWritten, writeAt, expected, 0, n);
                }
                writeAt += p.length[i];
            } else {
                System.arraycopy(p.readable, readAt, expected, 0, p.length[i]);
                readAt += p.length[i];
            }
            assertArrayEquals(expected, actual, where + ": bytes of buffer " + i);
        }
    }

    private static void shuffle(SplittableRandom random, List<DescriptorChain> list) {
        for (int i = list.size() - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            DescriptorChain t = list.get(i);
            list.set(i, list.get(j));
            list.set(j, t);
        }
    }
}
