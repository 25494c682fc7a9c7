package dev.outproc.migration.stream;

import dev.outproc.migration.internal.FieldInput;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Cursor over the elements of an ARRAY field: element values carry no tag and all have {@link #elementType()}.
 */
public final class ArrayReader {
    private final FieldInput in;
    private final int tag;
    private final FieldType element;
    private final long count;
    private final int depth;
    private long index;
    private FieldReader openRecord;

    ArrayReader(FieldInput in, int tag, FieldType element, long count, int depth) {
        this.in = in;
        this.tag = tag;
        this.element = element;
        this.count = count;
        this.depth = depth;
    }

    /** @return the type of every element */
    public FieldType elementType() {
        return element;
    }

    /** @return the number of elements (u32 on the wire) */
    public long count() {
        return count;
    }

    /** @return whether elements are left */
    public boolean hasNext() {
        return index < count;
    }

    private void advance(FieldType want) throws IOException {
        closeOpenRecord();
        if (element != want && !(want == null && element.isInteger())) {
            throw new StreamFormatException("ARRAY tag " + tag + " holds " + element + ", expected " + (want == null ? "an integer" : want) + " at " + in.where());
        }
        if (index >= count) {
            throw new IllegalStateException("array tag " + tag + " has no element left, count=" + count);
        }
        index++;
    }

    private void closeOpenRecord() throws IOException {
        if (openRecord != null) {
            while (openRecord.next()) {
                // skip what the caller left unread
            }
            openRecord = null;
        }
    }

    /**
     * @return next BOOL element
     * @throws IOException if malformed
     */
    public boolean nextBool() throws IOException {
        advance(FieldType.BOOL);
        return FieldReader.readBool(in, tag);
    }

    /**
     * @return next integer element, sign-extended
     * @throws IOException if malformed
     */
    public long nextLong() throws IOException {
        advance(null);
        return FieldReader.readInteger(in, element);
    }

    /**
     * @return next BYTES element, copied onto the heap (at most {@link StreamLimits#MAX_HEAP_BYTES})
     * @throws IOException if malformed
     */
    public byte[] nextBytes() throws IOException {
        advance(FieldType.BYTES);
        long len = in.i64();
        if (len < 0 || len > StreamLimits.MAX_HEAP_BYTES) {
            throw new StreamFormatException("BYTES element of ARRAY tag " + tag + " length " + Long.toUnsignedString(len) + " exceeds "
                    + StreamLimits.MAX_HEAP_BYTES + " at " + in.where());
        }
        byte[] b = new byte[(int) len];
        in.readFully(b, 0, b.length);
        return b;
    }

    /**
     * @return next STRING element
     * @throws IOException if malformed
     */
    public String nextString() throws IOException {
        advance(FieldType.STRING);
        return FieldReader.readString(in, tag);
    }

    /**
     * @return next RECORD element, read it before calling another method
     * @throws IOException if malformed
     */
    public FieldReader nextRecord() throws IOException {
        advance(FieldType.RECORD);
        openRecord = new FieldReader(in, depth, true);
        return openRecord;
    }

    /**
     * Materializes an integer array.
     *
     * @return all remaining elements, sign-extended
     * @throws IOException if malformed or over {@link StreamLimits#MAX_HEAP_ARRAY_ELEMENTS}
     */
    public long[] toLongArray() throws IOException {
        long left = count - index;
        if (left > StreamLimits.MAX_HEAP_ARRAY_ELEMENTS) {
            throw new StreamFormatException("ARRAY tag " + tag + " count " + count + " exceeds " + StreamLimits.MAX_HEAP_ARRAY_ELEMENTS + " for a heap copy at " + in.where());
        }
        long[] v = new long[(int) left];
        for (int i = 0; i < v.length; i++) {
            v[i] = nextLong();
        }
        return v;
    }

    /**
     * Materializes a string array.
     *
     * @return all remaining elements
     * @throws IOException if malformed or over {@link StreamLimits#MAX_HEAP_ARRAY_ELEMENTS}
     */
    public List<String> toStringList() throws IOException {
        long left = count - index;
        if (left > StreamLimits.MAX_HEAP_ARRAY_ELEMENTS) {
            throw new StreamFormatException("ARRAY tag " + tag + " count " + count + " exceeds " + StreamLimits.MAX_HEAP_ARRAY_ELEMENTS + " for a heap copy at " + in.where());
        }
        List<String> v = new ArrayList<>();
        while (hasNext()) {
            v.add(nextString());
        }
        return v;
    }

    /**
     * Skips the remaining elements.
     *
     * @throws IOException if malformed
     */
    public void skipRest() throws IOException {
        closeOpenRecord();
        while (index < count) {
            index++;
            if (element == FieldType.RECORD) {
                // A record element shares its array's level (stream-format.md §5.2), as nextRecord() reads it.
                FieldReader.skipRecordBody(in, depth);
            } else {
                FieldReader.skipValue(in, element, depth);
            }
        }
    }
}
