package dev.outproc.migration.internal;

import dev.outproc.migration.stream.StreamTruncatedException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** A field list held in a byte array (handshake messages, nested buffers). */
public final class ArrayInput implements FieldInput {
    private final byte[] b;
    private int pos;
    private final int limit;

    /**
     * Creates the input.
     *
     * @param b bytes
     * @param off first byte
     * @param len number of bytes
     */
    public ArrayInput(byte[] b, int off, int len) {
        this.b = b;
        this.pos = off;
        this.limit = Math.addExact(off, len);
    }

    private void need(long n) throws StreamTruncatedException {
        if (n > limit - pos) {
            throw new StreamTruncatedException(pos, n - (limit - pos));
        }
    }

    @Override
    public boolean atEnd() {
        return pos >= limit;
    }

    @Override
    public int u8() throws IOException {
        need(1);
        return b[pos++] & 0xff;
    }

    @Override
    public int u16() throws IOException {
        need(2);
        int v = Le.u16(b, pos);
        pos += 2;
        return v;
    }

    @Override
    public int i32() throws IOException {
        need(4);
        int v = Le.i32(b, pos);
        pos += 4;
        return v;
    }

    @Override
    public long i64() throws IOException {
        need(8);
        long v = Le.i64(b, pos);
        pos += 8;
        return v;
    }

    @Override
    public void readFully(byte[] dst, int off, int len) throws IOException {
        need(len);
        System.arraycopy(b, pos, dst, off, len);
        pos += len;
    }

    @Override
    public void readInto(MemorySegment dst, long off, long len) throws IOException {
        need(len);
        MemorySegment.copy(b, pos, dst, ValueLayout.JAVA_BYTE, off, (int) len);
        pos += (int) len;
    }

    @Override
    public void skip(long len) throws IOException {
        if (len < 0) {
            throw new StreamTruncatedException(pos, len);
        }
        need(len);
        pos += (int) len;
    }

    @Override
    public String where() {
        return "offset " + pos;
    }
}
