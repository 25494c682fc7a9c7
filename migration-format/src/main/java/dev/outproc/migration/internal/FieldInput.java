package dev.outproc.migration.internal;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

/** Bytes under a field list: a chunked section body or an in-memory message body. */
public interface FieldInput {
    /**
     * @return true if the field list has no more bytes
     * @throws IOException on a read failure
     */
    boolean atEnd() throws IOException;

    /**
     * @return unsigned byte
     * @throws IOException on truncation
     */
    int u8() throws IOException;

    /**
     * @return unsigned 16-bit
     * @throws IOException on truncation
     */
    int u16() throws IOException;

    /**
     * @return 32-bit
     * @throws IOException on truncation
     */
    int i32() throws IOException;

    /**
     * @return 64-bit
     * @throws IOException on truncation
     */
    long i64() throws IOException;

    /**
     * @param dst destination
     * @param off offset
     * @param len length
     * @throws IOException on truncation
     */
    void readFully(byte[] dst, int off, int len) throws IOException;

    /**
     * @param dst destination
     * @param off offset
     * @param len length
     * @throws IOException on truncation
     */
    void readInto(MemorySegment dst, long off, long len) throws IOException;

    /**
     * @param len bytes to skip
     * @throws IOException on truncation
     */
    void skip(long len) throws IOException;

    /** @return a description of where the input is, for error messages */
    String where();
}
