package dev.outproc.migration.stream;

import dev.outproc.migration.internal.ArrayOutput;
import dev.outproc.migration.internal.FieldOutput;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Encodes typed fields (spec section "Field encoding"): each is a u16 tag, a u8 {@link FieldType} code and the
 * value. Tags identify fields within their record, so a reader can skip fields it does not know and use
 * defaults for fields that are absent; that is how a section evolves without a new version.
 *
 * <p>Obtained from {@link DeviceStateWriter#beginSection} for a section body, or from {@link #inMemory()}.
 * Methods return {@code this} so calls chain:
 * {@snippet :
 * fields.int64(1, capacity).int32(2, blkSize).bool(3, readOnly).bytes(4, ramSegment);
 * }
 */
public final class FieldWriter {
    private final FieldOutput out;
    private final ArrayOutput memory;
    private int depth;
    private long[] arrayRemaining = new long[StreamLimits.MAX_DEPTH + 1];
    /** Whether the level opened at each depth is a record element of an array (it shares the array's level). */
    private final boolean[] elementAt = new boolean[2 * StreamLimits.MAX_DEPTH + 2];
    private int openElements;
    private int arrayDepth;

    FieldWriter(FieldOutput out) {
        this.out = out;
        this.memory = out instanceof ArrayOutput a ? a : null;
    }

    /**
     * Returns a writer whose bytes stay in memory ({@link #toByteArray()}); {@link FieldReader#of(byte[])} reads them.
     *
     * @return a new in-memory writer
     */
    public static FieldWriter inMemory() {
        return new FieldWriter(new ArrayOutput());
    }

    /**
     * Returns the bytes of an in-memory writer.
     *
     * @return the encoded fields
     * @throws IllegalStateException if this writer streams to a section
     */
    public byte[] toByteArray() {
        if (memory == null) {
            throw new IllegalStateException("not an in-memory field writer");
        }
        return memory.toByteArray();
    }

    private void header(int tag, FieldType type) throws IOException {
        if (tag < 1 || tag > 0xffff) {
            throw new IllegalArgumentException("field tag must be in 1..65535, tag=" + tag);
        }
        out.u16(tag);
        out.u8(type.code());
    }

    /**
     * @param tag field tag
     * @param v value
     * @return this
     * @throws IOException if the channel fails
     */
    public FieldWriter bool(int tag, boolean v) throws IOException {
        header(tag, FieldType.BOOL);
        out.u8(v ? 1 : 0);
        return this;
    }

    /**
     * @param tag field tag
     * @param v value
     * @return this
     * @throws IOException if the channel fails
     */
    public FieldWriter int8(int tag, int v) throws IOException {
        header(tag, FieldType.INT8);
        out.u8(v);
        return this;
    }

    /**
     * @param tag field tag
     * @param v value
     * @return this
     * @throws IOException if the channel fails
     */
    public FieldWriter int16(int tag, int v) throws IOException {
        header(tag, FieldType.INT16);
        out.u16(v);
        return this;
    }

    /**
     * @param tag field tag
     * @param v value
     * @return this
     * @throws IOException if the channel fails
     */
    public FieldWriter int32(int tag, int v) throws IOException {
        header(tag, FieldType.INT32);
        out.i32(v);
        return this;
    }

    /**
     * @param tag field tag
     * @param v value
     * @return this
     * @throws IOException if the channel fails
     */
    public FieldWriter int64(int tag, long v) throws IOException {
        header(tag, FieldType.INT64);
        out.i64(v);
        return this;
    }

    /**
     * @param tag field tag
     * @param v bytes
     * @return this
     * @throws IOException if the channel fails
     */
    public FieldWriter bytes(int tag, byte[] v) throws IOException {
        header(tag, FieldType.BYTES);
        out.i64(v.length);
        out.write(v, 0, v.length);
        return this;
    }

    /**
     * Writes the whole segment as a BYTES value, copying it from the segment without an intermediate heap copy
     * of the blob (the stream buffer is the only staging area, so memory stays bounded).
     *
     * @param tag field tag
     * @param blob the bytes, any size
     * @return this
     * @throws IOException if the channel fails
     */
    public FieldWriter bytes(int tag, MemorySegment blob) throws IOException {
        header(tag, FieldType.BYTES);
        out.i64(blob.byteSize());
        out.writeFrom(blob, 0, blob.byteSize());
        return this;
    }

    /**
     * @param tag field tag
     * @param v value, encoded as UTF-8
     * @return this
     * @throws IOException if the channel fails
     */
    public FieldWriter string(int tag, String v) throws IOException {
        byte[] utf8 = v.getBytes(StandardCharsets.UTF_8);
        if (utf8.length > StreamLimits.MAX_STRING_BYTES) {
            throw new IllegalArgumentException("string longer than " + StreamLimits.MAX_STRING_BYTES + " bytes, length=" + utf8.length);
        }
        header(tag, FieldType.STRING);
        out.i32(utf8.length);
        out.write(utf8, 0, utf8.length);
        return this;
    }

    /**
     * Opens a nested record; close it with {@link #endRecord()}.
     *
     * @param tag field tag
     * @return this
     * @throws IOException if the channel fails
     */
    public FieldWriter beginRecord(int tag) throws IOException {
        enter();
        header(tag, FieldType.RECORD);
        return this;
    }

    /**
     * Closes the innermost record (writes the END field).
     *
     * @return this
     * @throws IOException if the channel fails
     */
    public FieldWriter endRecord() throws IOException {
        if (depth == 0) {
            throw new IllegalStateException("no open record");
        }
        out.u16(0);
        out.u8(FieldType.END.code());
        if (elementAt[depth]) {
            elementAt[depth] = false;
            openElements--;
        }
        depth--;
        return this;
    }

    /**
     * Opens a level. The limit counts as the reader does (stream-format.md §5.2): a record element of an array shares
     * the array's level, so open elements do not count.
     */
    private void enter() {
        if (depth - openElements >= StreamLimits.MAX_DEPTH) {
            throw new IllegalStateException("records nested deeper than " + StreamLimits.MAX_DEPTH);
        }
        depth++;
    }

    private void arrayHeader(int tag, FieldType element, long count) throws IOException {
        if (count < 0 || count > 0xffff_ffffL) {
            throw new IllegalArgumentException("array count must fit in u32, count=" + count);
        }
        header(tag, FieldType.ARRAY);
        out.u8(element.code());
        out.i32((int) count);
    }

    /**
     * @param tag field tag
     * @param v values
     * @return this
     * @throws IOException if the channel fails
     */
    public FieldWriter int64Array(int tag, long[] v) throws IOException {
        arrayHeader(tag, FieldType.INT64, v.length);
        for (long x : v) {
            out.i64(x);
        }
        return this;
    }

    /**
     * @param tag field tag
     * @param v values
     * @return this
     * @throws IOException if the channel fails
     */
    public FieldWriter int32Array(int tag, int[] v) throws IOException {
        arrayHeader(tag, FieldType.INT32, v.length);
        for (int x : v) {
            out.i32(x);
        }
        return this;
    }

    /**
     * @param tag field tag
     * @param v values
     * @return this
     * @throws IOException if the channel fails
     */
    public FieldWriter int16Array(int tag, short[] v) throws IOException {
        arrayHeader(tag, FieldType.INT16, v.length);
        for (short x : v) {
            out.u16(x);
        }
        return this;
    }

    /**
     * @param tag field tag
     * @param v values
     * @return this
     * @throws IOException if the channel fails
     */
    public FieldWriter boolArray(int tag, boolean[] v) throws IOException {
        arrayHeader(tag, FieldType.BOOL, v.length);
        for (boolean x : v) {
            out.u8(x ? 1 : 0);
        }
        return this;
    }

    /**
     * @param tag field tag
     * @param v values
     * @return this
     * @throws IOException if the channel fails
     */
    public FieldWriter stringArray(int tag, List<String> v) throws IOException {
        arrayHeader(tag, FieldType.STRING, v.size());
        for (String s : v) {
            byte[] utf8 = s.getBytes(StandardCharsets.UTF_8);
            out.i32(utf8.length);
            out.write(utf8, 0, utf8.length);
        }
        return this;
    }

    /**
     * @param tag field tag
     * @param v values (each copied onto the stream)
     * @return this
     * @throws IOException if the channel fails
     */
    public FieldWriter bytesArray(int tag, List<byte[]> v) throws IOException {
        arrayHeader(tag, FieldType.BYTES, v.size());
        for (byte[] b : v) {
            out.i64(b.length);
            out.write(b, 0, b.length);
        }
        return this;
    }

    /**
     * Opens an array of records; write each element with {@link #beginElement()} ... {@link #endRecord()}, then
     * call {@link #endArray()}.
     *
     * @param tag field tag
     * @param count number of elements that follow
     * @return this
     * @throws IOException if the channel fails
     */
    public FieldWriter beginRecordArray(int tag, long count) throws IOException {
        enter();
        arrayHeader(tag, FieldType.RECORD, count);
        arrayRemaining[++arrayDepth] = count;
        return this;
    }

    /**
     * Opens the next record element of the array opened by {@link #beginRecordArray}.
     *
     * @return this
     */
    public FieldWriter beginElement() {
        if (arrayDepth == 0 || arrayRemaining[arrayDepth] == 0) {
            throw new IllegalStateException("no record array with elements left");
        }
        arrayRemaining[arrayDepth]--;
        depth++;
        elementAt[depth] = true;
        openElements++;
        return this;
    }

    /**
     * Closes the array opened by {@link #beginRecordArray}.
     *
     * @return this
     */
    public FieldWriter endArray() {
        if (arrayDepth == 0 || arrayRemaining[arrayDepth] != 0) {
            throw new IllegalStateException("record array has elements left: "
                    + (arrayDepth == 0 ? "none open" : arrayRemaining[arrayDepth]));
        }
        arrayDepth--;
        depth--;
        return this;
    }

    boolean balanced() {
        return depth == 0 && arrayDepth == 0;
    }
}
