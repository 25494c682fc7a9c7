package dev.outproc.migration.stream;

import dev.outproc.migration.internal.ByteSink;
import dev.outproc.migration.internal.FieldOutput;
import dev.outproc.migration.internal.Le;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * Section body as chunks: small fields collect in a chunk buffer; a blob of at least a chunk is framed as its own
 * chunks and copied from its segment into the sink, so the writer never needs a body length in advance.
 */
final class ChunkedOutput implements FieldOutput {
    private final ByteSink sink;
    private final byte[] chunk = new byte[StreamLayout.WRITE_CHUNK_BYTES];
    private int pos;

    ChunkedOutput(ByteSink sink) {
        this.sink = sink;
    }

    private void ensure(int n) throws IOException {
        if (chunk.length - pos < n) {
            emit();
        }
    }

    void emit() throws IOException {
        if (pos > 0) {
            sink.i32(pos);
            sink.write(chunk, 0, pos);
            pos = 0;
        }
    }

    /** Emits the pending chunk and the zero-length terminator. */
    void end() throws IOException {
        emit();
        sink.i32(0);
    }

    @Override
    public void u8(int v) throws IOException {
        ensure(1);
        chunk[pos++] = (byte) v;
    }

    @Override
    public void u16(int v) throws IOException {
        ensure(2);
        Le.put16(chunk, pos, v);
        pos += 2;
    }

    @Override
    public void i32(int v) throws IOException {
        ensure(4);
        Le.put32(chunk, pos, v);
        pos += 4;
    }

    @Override
    public void i64(long v) throws IOException {
        ensure(8);
        Le.put64(chunk, pos, v);
        pos += 8;
    }

    @Override
    public void write(byte[] src, int off, int len) throws IOException {
        while (len > 0) {
            ensure(1);
            int n = Math.min(len, chunk.length - pos);
            System.arraycopy(src, off, chunk, pos, n);
            pos += n;
            off += n;
            len -= n;
        }
    }

    @Override
    public void writeFrom(MemorySegment src, long off, long len) throws IOException {
        while (len > 0) {
            if (pos == 0 && len >= chunk.length) {
                int n = (int) Math.min(len, StreamLayout.WRITE_BLOB_CHUNK_BYTES);
                sink.i32(n);
                sink.writeFrom(src, off, n);
                off += n;
                len -= n;
            } else {
                ensure(1);
                int n = (int) Math.min(len, chunk.length - pos);
                MemorySegment.copy(src, java.lang.foreign.ValueLayout.JAVA_BYTE, off, chunk, pos, n);
                pos += n;
                off += n;
                len -= n;
            }
        }
    }
}
