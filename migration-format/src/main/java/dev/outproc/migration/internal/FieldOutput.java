package dev.outproc.migration.internal;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

/** Destination of encoded fields: a chunked section body or an in-memory message body. */
public interface FieldOutput {
    /**
     * @param v byte
     * @throws IOException on a write failure
     */
    void u8(int v) throws IOException;

    /**
     * @param v value
     * @throws IOException on a write failure
     */
    void u16(int v) throws IOException;

    /**
     * @param v value
     * @throws IOException on a write failure
     */
    void i32(int v) throws IOException;

    /**
     * @param v value
     * @throws IOException on a write failure
     */
    void i64(long v) throws IOException;

    /**
     * @param src bytes
     * @param off offset
     * @param len length
     * @throws IOException on a write failure
     */
    void write(byte[] src, int off, int len) throws IOException;

    /**
     * @param src segment
     * @param off offset
     * @param len length
     * @throws IOException on a write failure
     */
    void writeFrom(MemorySegment src, long off, long len) throws IOException;
}
