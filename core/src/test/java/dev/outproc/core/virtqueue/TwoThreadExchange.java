package dev.outproc.core.virtqueue;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.virtio.VirtioFeature;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * A driver thread and a device thread exchanging chains over one ring in memfd memory, with eventfd
 * kicks and calls and notification suppression, as a guest and a back-end do. Every chain carries 64
 * readable bytes derived from its sequence number; the device writes back a checksum of them into the
 * 8 writable bytes; the driver verifies every checksum and id.
 */
final class TwoThreadExchange {
    private static final int READ_BYTES = 64;
    private static final int WRITE_BYTES = 8;
    /** Long enough that a descheduled peer on a loaded machine is not mistaken for a lost wakeup. */
    private static final int WAIT_MILLIS = 10_000;

    /** What a run counted. */
    record Result(long chains, long kicks, long calls, long deviceLostWakeups, long driverLostWakeups,
                  long deviceSleeps, long driverSleeps) {
    }

    private TwoThreadExchange() {
    }

    static long checksum(MemorySegment bytes, long offset) {
        long h = 0x9e37_79b9_7f4a_7c15L;
        for (int i = 0; i < READ_BYTES; i += 8) {
            h = (h ^ bytes.get(ValueLayout.JAVA_LONG_UNALIGNED, offset + i)) * 0xff51_afd7_ed55_8ccdL;
        }
        return h;
    }

    static Result run(boolean packed, boolean eventIdx, int size, long total) throws Exception {
        long features = eventIdx ? VirtioFeature.EVENT_IDX.mask() : 0;
        try (GuestRam ram = new GuestRam(4L << 20);
             EventFd kick = EventFd.create();
             EventFd call = EventFd.create();
             Waiter kickWaiter = new Waiter(kick);
             Waiter callWaiter = new Waiter(call)) {
            Rig rig = Rig.create(ram, packed, size, features, 0);
            long dataBase = ram.allocator.allocate((long) size * (READ_BYTES + WRITE_BYTES), 64);
            ExecutorService threads = Executors.newFixedThreadPool(2);
            try {
                Future<long[]> device = threads.submit(() -> deviceLoop(rig.device(), kick, call,
                        kickWaiter, total));
                Future<long[]> driver = threads.submit(() -> driverLoop(rig.driver(), ram, dataBase, kick, callWaiter, size, total));
                long[] d = device.get(10, TimeUnit.MINUTES);
                long[] r = driver.get(10, TimeUnit.MINUTES);
                return new Result(r[0], r[1], d[1], d[2], r[2], d[3], r[3]);
            } finally {
                threads.shutdownNow();
            }
        }
    }

    /** Returns {completed, calls, lostWakeups, sleeps}. */
    private static long[] deviceLoop(DeviceQueue q, EventFd kick, EventFd call, Waiter kickWaiter, long total) throws Exception {
        DescriptorChain[] batch = new DescriptorChain[64];
        long[] lengths = new long[64];
        MemorySegment out = MemorySegment.ofArray(new long[1]);
        MemorySegment in = MemorySegment.ofArray(new long[READ_BYTES / 8]);
        long completed = 0;
        long calls = 0;
        long lost = 0;
        long sleeps = 0;
        q.disableNotifications();
        while (completed < total) {
            int n = 0;
            DescriptorChain c;
            while ((c = q.pop()) != null) {
                c.readReadable(0, in, 0, READ_BYTES);
                out.set(ValueLayout.JAVA_LONG, 0, checksum(in, 0));
                c.writeWritable(0, out, 0, WRITE_BYTES);
                batch[n] = c;
                lengths[n] = WRITE_BYTES;
                if (++n == batch.length) {
                    q.addUsedBatch(batch, lengths, n);
                    completed += n;
                    n = 0;
                    if (q.needsNotification()) {
                        call.signal();
                        calls++;
                    }
                }
            }
            if (n > 0) {
                q.addUsedBatch(batch, lengths, n);
                completed += n;
                if (q.needsNotification()) {
                    call.signal();
                    calls++;
                }
            }
            if (completed >= total) {
                break;
            }
            if (q.enableNotifications()) {
                q.disableNotifications();
                continue;
            }
            sleeps++;
            if (!kickWaiter.await(WAIT_MILLIS) && q.enableNotifications()) {
                // Work was there and no kick came: a lost wakeup.
                lost++;
            }
            q.disableNotifications();
        }
        return new long[] {completed, calls, lost, sleeps};
    }

    /** Returns {reaped, kicks, lostWakeups, sleeps}. */
    private static long[] driverLoop(DriverQueue q, GuestRam ram, long dataBase, EventFd kick, Waiter callWaiter,
                                     int size, long total) throws Exception {
        int slotBytes = READ_BYTES + WRITE_BYTES;
        int[] freeSlots = new int[size];
        int freeCount = size;
        for (int i = 0; i < size; i++) {
            freeSlots[i] = i;
        }
        int[] slotOfId = new int[size];
        long[] expected = new long[size];
        MemorySegment data = ram.at(dataBase, (long) size * slotBytes);
        long posted = 0;
        long reaped = 0;
        long kicks = 0;
        long lost = 0;
        long sleeps = 0;
        q.disableUsedNotifications();
        while (reaped < total) {
            int added = 0;
            while (posted < total && freeCount > 0) {
                int slot = freeSlots[freeCount - 1];
                long at = (long) slot * slotBytes;
                for (int i = 0; i < READ_BYTES; i += 8) {
                    data.set(ValueLayout.JAVA_LONG_UNALIGNED, at + i, posted * 0x1_0000_0001L + i);
                }
                data.set(ValueLayout.JAVA_LONG_UNALIGNED, at + READ_BYTES, 0L);
                q.add(dataBase + at, READ_BYTES, false);
                q.add(dataBase + at + READ_BYTES, WRITE_BYTES, true);
                int id = q.post(false);
                if (id < 0) {
                    q.clearStaged();
                    break;
                }
                freeCount--;
                slotOfId[id] = slot;
                expected[id] = checksum(data, at);
                posted++;
                added++;
            }
            if (added > 0) {
                q.publish();
                if (q.kickNeeded()) {
                    kick.signal();
                    kicks++;
                }
            }
            long used;
            int got = 0;
            while ((used = q.pollUsed()) != DriverQueue.NONE) {
                int id = DriverQueue.usedId(used);
                int slot = slotOfId[id];
                long at = (long) slot * slotBytes;
                long sum = data.get(ValueLayout.JAVA_LONG_UNALIGNED, at + READ_BYTES);
                if (DriverQueue.usedLength(used) != WRITE_BYTES || sum != expected[id]) {
                    throw new AssertionError("chain id " + id + " after " + reaped + " reaped: length "
                            + DriverQueue.usedLength(used) + ", checksum " + Long.toHexString(sum) + ", expected "
                            + Long.toHexString(expected[id]));
                }
                freeSlots[freeCount++] = slot;
                reaped++;
                got++;
            }
            if (got == 0 && (added == 0 || freeCount == 0)) {
                if (q.enableUsedNotifications()) {
                    q.disableUsedNotifications();
                    continue;
                }
                sleeps++;
                if (!callWaiter.await(WAIT_MILLIS) && q.enableUsedNotifications()) {
                    lost++;
                }
                q.disableUsedNotifications();
            }
        }
        if (q.pollUsed() != DriverQueue.NONE || q.inFlightCount() != 0) {
            throw new AssertionError("extra completions after " + total + " chains, in flight " + q.inFlightCount());
        }
        return new long[] {reaped, kicks, lost, sleeps};
    }
}
