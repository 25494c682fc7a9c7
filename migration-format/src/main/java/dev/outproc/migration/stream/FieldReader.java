package dev.outproc.migration.stream;

import dev.outproc.migration.internal.ArrayInput;
import dev.outproc.migration.internal.FieldInput;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Pull reader of a field list (a section body, a nested record or an in-memory buffer). {@link #next()} moves to
 * the next field; the accessor for its type returns the value; a value that is not read is skipped.
 * Unknown tags are meant to be skipped, which is what lets an old reader read a newer stream:
 * {@snippet :
 * while (fields.next()) {
 *     switch (fields.tag()) {
 *         case 1 -> capacity = fields.int64();
 *         case 4 -> fields.bytesInto(ramSegment);
 *         default -> fields.skip(); // a field added by a newer writer
 *     }
 * }
 * }
 *
 * <p>Every value read is validated (type, BOOL is 0 or 1, UTF-8 is well formed, lengths within
 * {@link StreamLimits}); a violation is a {@link StreamFormatException} that names the tag and the values.
 */
public final class FieldReader {
    private final FieldInput in;
    private final int depth;
    private final boolean record;
    private int tag;
    private FieldType type;
    private boolean pending;
    private boolean finished;
    private FieldReader child;
    private ArrayReader childArray;
    /** Tags 1..63 seen in this list, one bit each: the common case needs no allocation. */
    private long seenLowTags;
    /** Tags from 64 up seen in this list, allocated on the first such tag. */
    private java.util.BitSet seenHighTags;

    FieldReader(FieldInput in, int depth, boolean record) {
        this.in = in;
        this.depth = depth;
        this.record = record;
    }

    /**
     * Returns a reader over fields encoded in memory, e.g. by {@link FieldWriter#inMemory()}.
     *
     * @param bytes the encoded fields
     * @return a reader
     */
    public static FieldReader of(byte[] bytes) {
        return new FieldReader(new ArrayInput(bytes, 0, bytes.length), 0, false);
    }

    /**
     * Returns a reader over fields in a byte range (the bytes are not copied).
     *
     * @param bytes array
     * @param offset first byte
     * @param length number of bytes
     * @return a reader
     */
    public static FieldReader of(byte[] bytes, int offset, int length) {
        return new FieldReader(new ArrayInput(bytes, offset, length), 0, false);
    }

    /**
     * Moves to the next field, skipping the current value if it was not read.
     *
     * @return false at the end of the list (end of the section body, or the END of a record)
     * @throws IOException if the stream is malformed or the channel fails
     */
    public boolean next() throws IOException {
        if (finished) {
            return false;
        }
        drainCurrent();
        if (!record && in.atEnd()) {
            finished = true;
            return false;
        }
        int t = in.u16();
        int code = in.u8();
        FieldType ft = FieldType.ofCode(code);
        if (ft == null) {
            throw new StreamFormatException("undefined field type 0x" + Integer.toHexString(code) + " for tag " + t + " at " + in.where());
        }
        if (ft == FieldType.END || t == 0) {
            if (record && ft == FieldType.END && t == 0) {
                finished = true;
                return false;
            }
            throw new StreamFormatException("END marker must be tag 0 type 0x00 and only close a record, tag=" + t + " type=" + ft + " at " + in.where());
        }
        markSeen(t);
        tag = t;
        type = ft;
        pending = true;
        return true;
    }

    /** Refuses a tag that already appeared in this list (stream-format.md §5.3): no reader may guess which one counts. */
    private void markSeen(int t) throws StreamFormatException {
        boolean repeated;
        if (t < Long.SIZE) {
            repeated = (seenLowTags & (1L << t)) != 0;
            seenLowTags |= 1L << t;
        } else {
            if (seenHighTags == null) {
                seenHighTags = new java.util.BitSet();
            }
            repeated = seenHighTags.get(t);
            seenHighTags.set(t);
        }
        if (repeated) {
            throw new StreamFormatException("field tag " + t + " appears twice in one field list at " + in.where());
        }
    }

    private void drainCurrent() throws IOException {
        if (child != null) {
            while (child.next()) {
                // skips the rest of the nested record
            }
            child = null;
        }
        if (childArray != null) {
            childArray.skipRest();
            childArray = null;
        }
        if (pending) {
            if (tag >= StreamLayout.MUST_UNDERSTAND_TAG) {
                // An optional subsection (stream-format.md §5.4): the writer sent it because the state needs it, so a
                // reader that does not understand it must not load the state without it.
                throw new UnsupportedSectionException(0, 0, "field tag " + tag + " (0x" + Integer.toHexString(tag)
                        + ") is a must-understand subsection that this reader does not read, at " + in.where());
            }
            skipValue(in, type, depth);
            pending = false;
        }
        if (pendingBody >= 0) {
            // bytesLength() was called but the body was neither read nor skipped
            long len = pendingBody;
            pendingBody = -1;
            in.skip(len);
        }
    }

    /** @return the current field's tag */
    public int tag() {
        return tag;
    }

    /** @return the current field's wire type */
    public FieldType type() {
        return type;
    }

    private void expect(FieldType want) throws StreamFormatException {
        if (!pending) {
            throw new IllegalStateException("no unread field value; call next() first");
        }
        if (type != want) {
            throw new StreamFormatException("field tag " + tag + " has type " + type + ", expected " + want + " at " + in.where());
        }
        pending = false;
    }

    /**
     * @return the BOOL value
     * @throws IOException if the field is not a valid BOOL
     */
    public boolean bool() throws IOException {
        expect(FieldType.BOOL);
        return readBool(in, tag);
    }

    /**
     * @return the INT8 value
     * @throws IOException if the field is not INT8
     */
    public byte int8() throws IOException {
        expect(FieldType.INT8);
        return (byte) in.u8();
    }

    /**
     * @return the INT16 value
     * @throws IOException if the field is not INT16
     */
    public short int16() throws IOException {
        expect(FieldType.INT16);
        return (short) in.u16();
    }

    /**
     * @return the INT32 value
     * @throws IOException if the field is not INT32
     */
    public int int32() throws IOException {
        expect(FieldType.INT32);
        return in.i32();
    }

    /**
     * @return the INT64 value
     * @throws IOException if the field is not INT64
     */
    public long int64() throws IOException {
        expect(FieldType.INT64);
        return in.i64();
    }

    /**
     * Reads any integer field, sign-extended to 64 bits; use it where a field may widen between versions.
     *
     * @return the value
     * @throws IOException if the field is not an integer
     */
    public long longValue() throws IOException {
        if (!pending || !type.isInteger()) {
            throw new StreamFormatException("field tag " + tag + " has type " + type + ", expected an integer at " + in.where());
        }
        pending = false;
        return readInteger(in, type);
    }

    /**
     * Reads a BYTES value onto the heap.
     *
     * @return the bytes
     * @throws IOException if the field is not BYTES or longer than {@link StreamLimits#MAX_HEAP_BYTES}
     */
    public byte[] bytes() throws IOException {
        expect(FieldType.BYTES);
        long len = in.i64();
        if (len < 0 || len > StreamLimits.MAX_HEAP_BYTES) {
            throw new StreamFormatException("BYTES tag " + tag + " length " + Long.toUnsignedString(len)
                    + " exceeds the heap limit " + StreamLimits.MAX_HEAP_BYTES + "; read it with bytesInto at " + in.where());
        }
        byte[] b = new byte[(int) len];
        in.readFully(b, 0, b.length);
        return b;
    }

    /**
     * Reads a BYTES value straight into a segment; the value's length must equal the segment's size, so a hostile
     * stream can neither overrun the destination nor leave part of it stale.
     *
     * @param dst destination of exactly the blob's size
     * @throws IOException if the field is not BYTES, its length differs, or the stream ends early
     */
    public void bytesInto(MemorySegment dst) throws IOException {
        expect(FieldType.BYTES);
        long len = in.i64();
        if (len != dst.byteSize()) {
            throw new StreamFormatException("BYTES tag " + tag + " length " + Long.toUnsignedString(len)
                    + " does not match the destination size " + dst.byteSize() + " at " + in.where());
        }
        in.readInto(dst, 0, len);
    }

    /**
     * Reads the length of a BYTES value and leaves the bytes to {@link #bytesInto(MemorySegment)}-style consumers
     * that need to size the destination first; the bytes are then read with {@link #readBytesBody(MemorySegment)}.
     *
     * @return the length in bytes
     * @throws IOException if the field is not BYTES
     */
    public long bytesLength() throws IOException {
        expect(FieldType.BYTES);
        long len = in.i64();
        if (len < 0) {
            throw new StreamFormatException("BYTES tag " + tag + " length " + Long.toUnsignedString(len) + " exceeds 2^63-1 at " + in.where());
        }
        pendingBody = len;
        return len;
    }

    private long pendingBody = -1;

    /**
     * Reads the body of the BYTES value whose length {@link #bytesLength()} returned.
     *
     * @param dst destination of exactly that length
     * @throws IOException if the stream ends early
     */
    public void readBytesBody(MemorySegment dst) throws IOException {
        if (pendingBody < 0 || dst.byteSize() != pendingBody) {
            throw new IllegalStateException("call bytesLength() first and pass a segment of that size, length=" + pendingBody + " size=" + dst.byteSize());
        }
        long len = pendingBody;
        pendingBody = -1;
        in.readInto(dst, 0, len);
    }

    /**
     * Skips the body of the BYTES value whose length {@link #bytesLength()} returned.
     *
     * @throws IOException if the stream ends early
     */
    public void skipBytesBody() throws IOException {
        if (pendingBody < 0) {
            throw new IllegalStateException("call bytesLength() first");
        }
        long len = pendingBody;
        pendingBody = -1;
        in.skip(len);
    }

    /**
     * @return the STRING value
     * @throws IOException if the field is not a well-formed STRING
     */
    public String string() throws IOException {
        expect(FieldType.STRING);
        return readString(in, tag);
    }

    /**
     * Opens the current RECORD field; read it to its end before using this reader again (or it is skipped).
     *
     * @return a reader of the nested fields
     * @throws IOException if the field is not a RECORD or nesting is too deep
     */
    public FieldReader record() throws IOException {
        expect(FieldType.RECORD);
        checkDepth(depth + 1, in);
        child = new FieldReader(in, depth + 1, true);
        return child;
    }

    /**
     * Opens the current ARRAY field.
     *
     * @return a cursor over the elements
     * @throws IOException if the field is not an ARRAY or its element type is invalid
     */
    public ArrayReader array() throws IOException {
        expect(FieldType.ARRAY);
        checkDepth(depth + 1, in);
        childArray = readArrayHeader(in, tag, depth + 1);
        return childArray;
    }

    /**
     * Skips the current value.
     *
     * @throws IOException if the stream is malformed
     */
    public void skip() throws IOException {
        drainCurrent();
    }

    // ---- shared value codec ----

    static void checkDepth(int depth, FieldInput in) throws StreamFormatException {
        if (depth > StreamLimits.MAX_DEPTH) {
            throw new StreamFormatException("nesting deeper than " + StreamLimits.MAX_DEPTH + " at " + in.where());
        }
    }

    static ArrayReader readArrayHeader(FieldInput in, int tag, int depth) throws IOException {
        int code = in.u8();
        FieldType element = FieldType.ofCode(code);
        if (element == null || element == FieldType.END || element == FieldType.ARRAY) {
            throw new StreamFormatException("ARRAY tag " + tag + " has invalid element type 0x" + Integer.toHexString(code) + " at " + in.where());
        }
        long count = Integer.toUnsignedLong(in.i32());
        return new ArrayReader(in, tag, element, count, depth);
    }

    static boolean readBool(FieldInput in, int tag) throws IOException {
        int b = in.u8();
        if (b > 1) {
            throw new StreamFormatException("BOOL tag " + tag + " must be 0 or 1, value=" + b + " at " + in.where());
        }
        return b == 1;
    }

    static long readInteger(FieldInput in, FieldType t) throws IOException {
        return switch (t) {
            case INT8 -> (byte) in.u8();
            case INT16 -> (short) in.u16();
            case INT32 -> in.i32();
            case INT64 -> in.i64();
            default -> throw new IllegalArgumentException(t.toString());
        };
    }

    static String readString(FieldInput in, int tag) throws IOException {
        long len = Integer.toUnsignedLong(in.i32());
        if (len > StreamLimits.MAX_STRING_BYTES) {
            throw new StreamFormatException("STRING tag " + tag + " length " + len + " exceeds " + StreamLimits.MAX_STRING_BYTES + " at " + in.where());
        }
        byte[] b = new byte[(int) len];
        in.readFully(b, 0, b.length);
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(b)).toString();
        } catch (CharacterCodingException e) {
            throw new StreamFormatException("STRING tag " + tag + " is not well-formed UTF-8 at " + in.where());
        }
    }

    /** Skips the fields and END of a record whose field list is at {@code depth}. */
    static void skipRecordBody(FieldInput in, int depth) throws IOException {
        FieldReader r = new FieldReader(in, depth, true);
        while (r.next()) {
            // each value is skipped by next()
        }
    }

    static void skipValue(FieldInput in, FieldType t, int depth) throws IOException {
        switch (t) {
            case BOOL -> readBool(in, -1);
            case INT8 -> in.skip(1);
            case INT16 -> in.skip(2);
            case INT32 -> in.skip(4);
            case INT64 -> in.skip(8);
            case BYTES -> {
                long len = in.i64();
                if (len < 0) {
                    throw new StreamFormatException("BYTES length " + Long.toUnsignedString(len) + " exceeds 2^63-1 at " + in.where());
                }
                in.skip(len);
            }
            case STRING -> readString(in, -1);
            case ARRAY -> {
                checkDepth(depth + 1, in);
                readArrayHeader(in, -1, depth + 1).skipRest();
            }
            case RECORD -> {
                checkDepth(depth + 1, in);
                skipRecordBody(in, depth + 1);
            }
            case END -> throw new StreamFormatException("END is not a value at " + in.where());
        }
    }
}
