package dev.outproc.core.virtqueue;

import dev.outproc.core.memory.Layouts;
import dev.outproc.core.virtio.VirtioFeature;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.AfterAll;

import java.lang.foreign.MemorySegment;

/**
 * Fills split and packed rings in memfd guest memory with arbitrary bytes and drives the device side
 * over them: pop, read, write, complete, notification decisions. The only exception allowed out is
 * {@link VirtqueueException}; anything else (IndexOutOfBounds, IllegalState, an endless loop caught by
 * Jazzer's timeout) is a finding. In a normal {@code mvn test} it replays its seeds; with
 * {@code JAZZER_FUZZ=1} it fuzzes for {@code maxDuration}.
 */
class VirtqueueFuzzTest {
    private static final long RAM_BYTES = 1L << 20;
    private static GuestRam ram;

    private static GuestRam ram() throws Exception {
        if (ram == null) {
            ram = new GuestRam(RAM_BYTES);
        }
        return ram;
    }

    @AfterAll
    static void closeRam() {
        if (ram != null) {
            ram.close();
            ram = null;
        }
    }

    @FuzzTest(maxDuration = "30s")
    void popArbitraryRings(FuzzedDataProvider data) throws Exception {
        GuestRam r = ram();
        r.region.segment().fill((byte) 0);
        boolean packed = data.consumeBoolean();
        int size = packed ? data.consumeInt(1, 64) : 1 << data.consumeInt(0, 6);
        long features = (data.consumeBoolean() ? VirtioFeature.INDIRECT_DESC.mask() : 0)
                | (data.consumeBoolean() ? VirtioFeature.EVENT_IDX.mask() : 0)
                | (data.consumeBoolean() ? VirtioFeature.IN_ORDER.mask() : 0);
        long descGpa = GuestRam.BASE;
        long driverGpa = GuestRam.BASE + 0x1000;
        long deviceGpa = GuestRam.BASE + 0x2000;
        if (data.consumeInt(0, 15) == 0) {
            // Now and then a hostile ring address.
            descGpa = data.consumeLong();
        }
        // Ring bytes: arbitrary, but descriptor addresses are steered into guest memory half of the time.
        MemorySegment ringArea = r.at(GuestRam.BASE, 0x3000);
        int ringBytes = data.consumeInt(0, 0x3000);
        byte[] raw = data.consumeBytes(ringBytes);
        MemorySegment.copy(MemorySegment.ofArray(raw), 0, ringArea, 0, raw.length);
        for (int i = 0; i < size; i++) {
            if (data.consumeBoolean()) {
                long addr = GuestRam.BASE + data.consumeLong(0, RAM_BYTES);
                ringArea.set(Layouts.LE_U64, 16L * i, addr);
            }
        }
        DeviceQueue q = packed ? new PackedQueue("fuzz") : new SplitQueue("fuzz");
        try {
            q.configure(new QueueConfig("fuzz", size, descGpa, driverGpa, deviceGpa, features), r.memory);
        } catch (VirtqueueException e) {
            return;
        }
        byte[] scratch = new byte[4096];
        MemorySegment buffer = MemorySegment.ofArray(scratch);
        DescriptorChain[] held = new DescriptorChain[size];
        int heldCount = 0;
        try {
            for (int round = 0; round < 4 && data.remainingBytes() > 0; round++) {
                if (data.consumeBoolean()) {
                    q.enableNotifications();
                } else {
                    q.disableNotifications();
                }
                DescriptorChain c;
                int pops = 0;
                while (pops++ < 2 * size && (c = q.pop()) != null) {
                    long n = Math.min(c.totalReadable(), scratch.length);
                    c.readReadable(0, buffer, 0, n);
                    for (int i = 0; i < c.bufferCount(); i++) {
                        c.segment(i);
                    }
                    held[heldCount++] = c;
                    if (heldCount == size) {
                        break;
                    }
                }
                int complete = data.consumeInt(0, heldCount);
                for (int i = 0; i < complete; i++) {
                    DescriptorChain d = held[i];
                    long written = Math.min(d.totalWritable(), data.consumeLong(0, scratch.length));
                    d.writeWritable(0, buffer, 0, written);
                    q.stageUsed(d, written);
                }
                System.arraycopy(held, complete, held, 0, heldCount - complete);
                heldCount -= complete;
                q.publishUsed();
                q.needsNotification();
                q.exportState();
            }
        } catch (VirtqueueException expected) {
            // The library's own error: what a hostile ring must produce.
        }
    }
}
