package dev.outproc.core.virtqueue;

import dev.outproc.core.memory.Layouts;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.AfterAll;

import java.lang.foreign.MemorySegment;

/**
 * The chain walker under descriptor tables a guest wrote to hurt it: split and packed rings whose
 * descriptors are built field by field from the fuzzer's bytes (flags from NEXT, WRITE and INDIRECT, next
 * indices in and out of range, lengths of zero, of a few bytes and of gigabytes, indirect tables that point
 * into a 64 KiB area the fuzzer fills with more descriptors, including indirect ones), and available rings
 * that name arbitrary heads. Unlike {@link VirtqueueFuzzTest}, whose ring bytes are mostly raw, the
 * structure here keeps most chains walkable so that the walker's limits are reached: loops, the chain cap
 * of {@link DescriptorChain#MAX_BUFFERS}, nested indirection, tables that run past memory.
 *
 * <p>Only {@link VirtqueueException} may come out. Every chain that pops must be consistent: at most
 * {@link DescriptorChain#MAX_BUFFERS} buffers, readable ones first, counts and totals that add up, and each
 * buffer's segment exactly as long as its descriptor says and inside guest memory.
 */
class ChainWalkerFuzzTest {
    private static final long RAM_BYTES = 1L << 20;
    private static final long DESC = GuestRam.BASE;
    private static final long DRIVER = GuestRam.BASE + 0x2000;
    private static final long DEVICE = GuestRam.BASE + 0x3000;
    private static final long INDIRECT = GuestRam.BASE + 0x4000;
    private static final int INDIRECT_ENTRIES = 4096;
    private static final long DATA = GuestRam.BASE + 0x20000;
    private static final int F_NEXT = 1;
    private static final int F_WRITE = 2;
    private static final int F_INDIRECT = 4;
    private static final int F_AVAIL = 1 << 7;
    private static final int F_USED = 1 << 15;
    private static GuestRam ram;

    @AfterAll
    static void closeRam() {
        if (ram != null) {
            ram.close();
            ram = null;
        }
    }

    @FuzzTest(maxDuration = "30s")
    void walkArbitraryChains(FuzzedDataProvider data) throws Exception {
        if (ram == null) {
            ram = new GuestRam(RAM_BYTES);
        }
        ram.region.segment().fill((byte) 0);
        boolean packed = data.consumeBoolean();
        int size = packed ? data.consumeInt(1, 256) : 1 << data.consumeInt(0, 8);
        long features = (data.consumeInt(0, 7) != 0 ? QueueConfig.F_INDIRECT_DESC : 0)
                | (data.consumeBoolean() ? QueueConfig.F_EVENT_IDX : 0);
        MemorySegment table = ram.at(DESC, 16L * size);
        for (int i = 0; i < size && data.remainingBytes() > 0; i++) {
            descriptor(data, table, i, size, packed);
        }
        MemorySegment indirect = ram.at(INDIRECT, 16L * INDIRECT_ENTRIES);
        int entries = data.consumeInt(0, 600);
        for (int i = 0; i < entries && data.remainingBytes() > 0; i++) {
            descriptor(data, indirect, data.consumeInt(0, INDIRECT_ENTRIES - 1), INDIRECT_ENTRIES, false);
        }
        if (!packed) {
            MemorySegment avail = ram.at(DRIVER, 4 + 2L * size);
            int idx = data.consumeInt(0, 2 * size);
            avail.set(Layouts.LE_U16, 2, (short) idx);
            for (int i = 0; i < size; i++) {
                int head = data.consumeInt(0, 15) == 0 ? data.consumeInt(0, 0xFFFF) : data.consumeInt(0, size - 1);
                avail.set(Layouts.LE_U16, 4 + 2L * i, (short) head);
            }
        }
        DeviceQueue q = packed ? new PackedQueue("walker") : new SplitQueue("walker");
        try {
            q.configure(new QueueConfig("walker", size, DESC, DRIVER, DEVICE, features), ram.memory);
        } catch (VirtqueueException e) {
            return;
        }
        try {
            DescriptorChain c;
            int pops = 0;
            while (pops++ < 2 * size && (c = q.pop()) != null) {
                check(c);
                q.stageUsed(c, Math.min(c.totalWritable(), data.consumeInt(0, 64)));
                q.publishUsed();
            }
        } catch (VirtqueueException expected) {
            // the library's own refusal of a hostile ring
        }
    }

    /** One descriptor at {@code index} of {@code table}, its fields steered by the fuzzer. */
    private static void descriptor(FuzzedDataProvider data, MemorySegment table, int index, int tableSize, boolean packed) {
        int flags = data.consumeInt(0, 7);
        long addr;
        long len;
        if ((flags & F_INDIRECT) != 0 && data.consumeInt(0, 7) != 0) {
            int first = data.consumeInt(0, INDIRECT_ENTRIES - 1);
            addr = INDIRECT + 16L * first;
            len = 16L * data.consumeInt(0, Math.min(INDIRECT_ENTRIES - first, 1100));
        } else {
            addr = switch (data.consumeInt(0, 5)) {
                case 0 -> data.consumeLong();
                case 1 -> GuestRam.BASE + RAM_BYTES - data.consumeInt(0, 64);
                default -> DATA + data.consumeInt(0, (int) (RAM_BYTES - (DATA - GuestRam.BASE)));
            };
            len = switch (data.consumeInt(0, 5)) {
                case 0 -> data.consumeInt() & 0xFFFF_FFFFL;
                case 1 -> 0;
                default -> data.consumeInt(1, 4096);
            };
        }
        long at = 16L * index;
        table.set(Layouts.LE_U64, at, addr);
        table.set(Layouts.LE_U32, at + 8, (int) len);
        if (packed) {
            int id = data.consumeInt(0, 7) == 0 ? data.consumeInt(0, 0xFFFF) : index;
            int wrap = data.consumeInt(0, 7) == 0 ? data.consumeInt(0, 3) : 1;
            int bits = flags | ((wrap & 1) != 0 ? F_AVAIL : 0) | ((wrap & 2) != 0 ? F_USED : 0);
            table.set(Layouts.LE_U16, at + 12, (short) id);
            table.set(Layouts.LE_U16, at + 14, (short) bits);
        } else {
            int next = data.consumeInt(0, 7) == 0 ? data.consumeInt(0, 0xFFFF) : data.consumeInt(0, tableSize - 1);
            table.set(Layouts.LE_U16, at + 12, (short) flags);
            table.set(Layouts.LE_U16, at + 14, (short) next);
        }
    }

    private static void check(DescriptorChain c) {
        int n = c.bufferCount();
        if (n > DescriptorChain.MAX_BUFFERS) {
            throw new AssertionError("a chain of " + n + " buffers passed the cap of " + DescriptorChain.MAX_BUFFERS);
        }
        if (c.readableCount() + c.writableCount() != n) {
            throw new AssertionError("readable " + c.readableCount() + " + writable " + c.writableCount() + " != " + n);
        }
        long readable = 0;
        long writable = 0;
        for (int i = 0; i < n; i++) {
            boolean w = c.isWritable(i);
            if (w != (i >= c.readableCount())) {
                throw new AssertionError("buffer " + i + " of " + c + " is out of order (readable ones come first)");
            }
            MemorySegment s = c.segment(i);
            if (s.byteSize() != c.length(i)) {
                throw new AssertionError("buffer " + i + " segment " + s.byteSize() + " bytes, descriptor " + c.length(i));
            }
            if (c.address(i) < GuestRam.BASE || c.address(i) + c.length(i) > GuestRam.BASE + RAM_BYTES) {
                throw new AssertionError("buffer " + i + " at " + Long.toHexString(c.address(i)) + " lies outside guest memory");
            }
            if (w) {
                writable += c.length(i);
            } else {
                readable += c.length(i);
            }
        }
        if (readable != c.totalReadable() || writable != c.totalWritable()) {
            throw new AssertionError("totals " + c.totalReadable() + "/" + c.totalWritable() + " but buffers add up to "
                    + readable + "/" + writable);
        }
    }
}
