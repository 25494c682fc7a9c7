package dev.outproc.examples.vfio;

import dev.outproc.migration.handshake.HandshakeAgreement;
import dev.outproc.migration.stream.ArrayReader;
import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.DeviceStateWriter;
import dev.outproc.migration.stream.FieldReader;
import dev.outproc.migration.stream.FieldWriter;
import dev.outproc.migration.stream.SectionInfo;
import dev.outproc.migration.stream.StreamFormatException;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.ReadableByteChannel;

/**
 * The sample card's state in its format class {@code outproc.dev/examples/vfio-user-sample/state} (the model is in
 * this module's registry resource {@code vfio-user-sample.json}, see {@link dev.outproc.examples.migration.ExampleModels}).
 * Sections of format version 1:
 * <table>
 * <caption>Sections</caption>
 * <tr><th>id</th><th>name</th><th>fields</th></tr>
 * <tr><td>1</td><td>registers</td><td>1 scratch, 2 counter, 3 dma_addr (INT64), 4 dma_len, 5 seed, 6 status, 7 rings (INT32)</td></tr>
 * <tr><td>2</td><td>memory</td><td>1 bar2 (BYTES): BAR2 when the save began</td></tr>
 * <tr><td>3</td><td>memory_changes</td><td>1 pages: ARRAY of RECORD {1 page (INT32), 2 data (BYTES, one page)}, the pages
 * of BAR2 that changed after section 2 was written (optional: only a save through PRE_COPY has it)</td></tr>
 * </table>
 * A save through PRE_COPY writes section 2 first (the initial part, moved while the card runs), then 3 and 1 in
 * STOP_COPY; a save in STOP_COPY alone writes 2 and 1. Readers accept any order (stream-format.md §4).
 *
 * @param scratch SCRATCH
 * @param counter COUNTER
 * @param dmaAddr DMA_ADDR
 * @param dmaLen DMA_LEN
 * @param seed SEED
 * @param status STATUS
 * @param rings RINGS
 * @param bar2 BAR2's contents, changes applied
 */
public record SampleCardState(int scratch, int counter, long dmaAddr, int dmaLen, int seed, int status, int rings, byte[] bar2) {
    /** The model id. */
    public static final String MODEL_ID = "outproc.dev/examples/vfio-user-sample";
    /** The format class. */
    public static final String FORMAT_CLASS = MODEL_ID + "/state";
    /** This implementation's id in the registry. */
    public static final String IMPLEMENTATION_ID = "outproc.dev/examples/vfio-user-sample";
    /** The only format version so far. */
    public static final int FORMAT_VERSION = 1;
    /** Section ids. */
    static final int REGISTERS = 1;
    static final int MEMORY = 2;
    static final int MEMORY_CHANGES = 3;
    /** The granularity of memory_changes. */
    public static final int PAGE_BYTES = 4096;

    /**
     * Writes the registers section from the card's register file.
     *
     * @param w the writer
     * @param registers the register file (offsets of {@link SampleCard})
     * @throws IOException when writing fails
     */
    static void writeRegisters(DeviceStateWriter w, MemorySegment registers) throws IOException {
        w.beginSection(REGISTERS, 1, true)
                .int32(1, registers.get(ValueLayout.JAVA_INT_UNALIGNED, SampleCard.SCRATCH))
                .int32(2, registers.get(ValueLayout.JAVA_INT_UNALIGNED, SampleCard.COUNTER))
                .int64(3, registers.get(ValueLayout.JAVA_LONG_UNALIGNED, SampleCard.DMA_ADDR))
                .int32(4, registers.get(ValueLayout.JAVA_INT_UNALIGNED, SampleCard.DMA_LEN))
                .int32(5, registers.get(ValueLayout.JAVA_INT_UNALIGNED, SampleCard.SEED))
                .int32(6, registers.get(ValueLayout.JAVA_INT_UNALIGNED, SampleCard.STATUS))
                .int32(7, registers.get(ValueLayout.JAVA_INT_UNALIGNED, SampleCard.RINGS));
        w.endSection();
    }

    /**
     * Writes the memory section.
     *
     * @param w the writer
     * @param bar2 BAR2's contents
     * @throws IOException when writing fails
     */
    static void writeMemory(DeviceStateWriter w, MemorySegment bar2) throws IOException {
        w.beginSection(MEMORY, 1, true).bytes(1, bar2);
        w.endSection();
    }

    /**
     * Writes the memory_changes section: every page of {@code bar2} that differs from {@code sent}.
     *
     * @param w the writer
     * @param sent BAR2 as the memory section carried it
     * @param bar2 BAR2 now
     * @return how many pages were written
     * @throws IOException when writing fails
     */
    static int writeChanges(DeviceStateWriter w, MemorySegment sent, MemorySegment bar2) throws IOException {
        int pages = (int) (bar2.byteSize() / PAGE_BYTES);
        int changed = changedPages(sent, bar2);
        FieldWriter f = w.beginSection(MEMORY_CHANGES, 1, true).beginRecordArray(1, changed);
        for (int page = 0; page < pages; page++) {
            MemorySegment now = bar2.asSlice((long) page * PAGE_BYTES, PAGE_BYTES);
            if (now.mismatch(sent.asSlice((long) page * PAGE_BYTES, PAGE_BYTES)) >= 0) {
                f.beginElement().int32(1, page).bytes(2, now).endRecord();
            }
        }
        f.endArray();
        w.endSection();
        return changed;
    }

    /**
     * Counts the pages that differ.
     *
     * @param sent BAR2 as sent
     * @param bar2 BAR2 now
     * @return the number of pages whose bytes differ
     */
    static int changedPages(MemorySegment sent, MemorySegment bar2) {
        int changed = 0;
        for (long at = 0; at < bar2.byteSize(); at += PAGE_BYTES) {
            if (bar2.asSlice(at, PAGE_BYTES).mismatch(sent.asSlice(at, PAGE_BYTES)) >= 0) {
                changed++;
            }
        }
        return changed;
    }

    /**
     * Reads and verifies a whole stream (digests, MAC, trailer) before returning anything.
     *
     * @param in the stream, to its end
     * @param agreement the destination's handshake agreement, or {@code null} for a stream no handshake preceded
     *        (then the header must name this model and format class, and carry digests)
     * @param bar2Bytes the size of the destination's BAR2; the memory section must have exactly this size
     * @return the state, changes applied
     * @throws IOException when the stream is malformed, tampered with, of another device or incomplete
     */
    public static SampleCardState read(ReadableByteChannel in, HandshakeAgreement agreement, long bar2Bytes) throws IOException {
        int[] regs = null;
        long dmaAddr = 0;
        byte[] memory = null;
        byte[][] changes = new byte[(int) (bar2Bytes / PAGE_BYTES)][];
        try (DeviceStateReader r = agreement != null ? DeviceStateReader.open(in, agreement)
                : DeviceStateReader.openUnattested(in, MODEL_ID, FORMAT_CLASS, FORMAT_VERSION, FORMAT_VERSION)) {
            SectionInfo s;
            while ((s = r.nextSection()) != null) {
                switch (s.id()) {
                    case REGISTERS -> {
                        r.requireVersion(1, 1);
                        regs = new int[8];
                        FieldReader f = r.fields();
                        while (f.next()) {
                            switch (f.tag()) {
                                case 1, 2, 4, 5, 6, 7 -> regs[f.tag()] = f.int32();
                                case 3 -> dmaAddr = f.int64();
                                default -> f.skip();
                            }
                        }
                    }
                    case MEMORY -> {
                        r.requireVersion(1, 1);
                        FieldReader f = r.fields();
                        while (f.next()) {
                            if (f.tag() == 1) {
                                memory = new byte[(int) bar2Bytes];
                                f.bytesInto(MemorySegment.ofArray(memory));
                            } else {
                                f.skip();
                            }
                        }
                    }
                    case MEMORY_CHANGES -> {
                        r.requireVersion(1, 1);
                        FieldReader f = r.fields();
                        while (f.next()) {
                            if (f.tag() != 1) {
                                f.skip();
                                continue;
                            }
                            ArrayReader pages = f.array();
                            while (pages.hasNext()) {
                                readChange(pages.nextRecord(), changes);
                            }
                        }
                    }
                    default -> r.skipSection();
                }
            }
            r.finish();
        }
        if (regs == null || memory == null) {
            throw new StreamFormatException("sample card state without its " + (regs == null ? "registers" : "memory") + " section");
        }
        for (int page = 0; page < changes.length; page++) {
            if (changes[page] != null) {
                System.arraycopy(changes[page], 0, memory, page * PAGE_BYTES, PAGE_BYTES);
            }
        }
        return new SampleCardState(regs[1], regs[2], dmaAddr, regs[4], regs[5], regs[6], regs[7], memory);
    }

    private static void readChange(FieldReader e, byte[][] changes) throws IOException {
        int page = -1;
        byte[] data = null;
        while (e.next()) {
            switch (e.tag()) {
                case 1 -> page = e.int32();
                case 2 -> {
                    data = new byte[PAGE_BYTES];
                    e.bytesInto(MemorySegment.ofArray(data));
                }
                default -> e.skip();
            }
        }
        if (page < 0 || page >= changes.length || data == null) {
            throw new StreamFormatException("memory_changes entry for page " + page + " of " + changes.length
                    + (data == null ? " without its data" : ""));
        }
        if (changes[page] != null) {
            throw new StreamFormatException("memory_changes carries page " + page + " twice");
        }
        changes[page] = data;
    }

    /**
     * Writes the registers into a register file.
     *
     * @param registers the register file (offsets of {@link SampleCard})
     */
    void applyRegisters(MemorySegment registers) {
        registers.set(ValueLayout.JAVA_INT_UNALIGNED, SampleCard.SCRATCH, scratch);
        registers.set(ValueLayout.JAVA_INT_UNALIGNED, SampleCard.COUNTER, counter);
        registers.set(ValueLayout.JAVA_LONG_UNALIGNED, SampleCard.DMA_ADDR, dmaAddr);
        registers.set(ValueLayout.JAVA_INT_UNALIGNED, SampleCard.DMA_LEN, dmaLen);
        registers.set(ValueLayout.JAVA_INT_UNALIGNED, SampleCard.SEED, seed);
        registers.set(ValueLayout.JAVA_INT_UNALIGNED, SampleCard.STATUS, status);
        registers.set(ValueLayout.JAVA_INT_UNALIGNED, SampleCard.RINGS, rings);
    }
}
