package dev.outproc.migration.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/** A growable byte array that fields are encoded into. */
public final class ArrayOutput implements FieldOutput {
    private byte[] b = new byte[256];
    private int pos;

    private void ensure(int n) {
        if (b.length - pos < n) {
            b = Arrays.copyOf(b, Math.max(Math.addExact(pos, n), b.length * 2));
        }
    }

    @Override
    public void u8(int v) {
        ensure(1);
        b[pos++] = (byte) v;
    }

    @Override
    public void u16(int v) {
        ensure(2);
        Le.put16(b, pos, v);
        pos += 2;
    }

    @Override
    public void i32(int v) {
        ensure(4);
        Le.put32(b, pos, v);
        pos += 4;
    }

    @Override
    public void i64(long v) {
        ensure(8);
        Le.put64(b, pos, v);
        pos += 8;
    }

    @Override
    public void write(byte[] src, int off, int len) {
        ensure(len);
        System.arraycopy(src, off, b, pos, len);
        pos += len;
    }

    @Override
    public void writeFrom(MemorySegment src, long off, long len) {
        ensure(Math.toIntExact(len));
        MemorySegment.copy(src, ValueLayout.JAVA_BYTE, off, b, pos, (int) len);
        pos += (int) len;
    }

    /** @return a copy of the bytes written */
    public byte[] toByteArray() {
        return Arrays.copyOf(b, pos);
    }

    /** @return number of bytes written */
    public int size() {
        return pos;
    }
}
