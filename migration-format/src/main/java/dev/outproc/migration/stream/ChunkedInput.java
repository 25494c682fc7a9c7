package dev.outproc.migration.stream;

import dev.outproc.migration.internal.ByteSource;
import dev.outproc.migration.internal.FieldInput;
import dev.outproc.migration.internal.Le;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/** Reads a chunked section body; values may span chunks. */
final class ChunkedInput implements FieldInput {
    private final ByteSource src;
    private final SectionInfo section;
    private final byte[] scratch = new byte[8];
    private long chunkLeft;
    private boolean ended;

    ChunkedInput(ByteSource src, SectionInfo section) {
        this.src = src;
        this.section = section;
    }

    boolean ended() {
        return ended;
    }

    /** Reads chunk headers until bytes are available or the terminator is reached. */
    private boolean advance() throws IOException {
        while (chunkLeft == 0 && !ended) {
            long at = src.position();
            long len = Integer.toUnsignedLong(src.i32());
            if (len == 0) {
                ended = true;
            } else if (len > StreamLimits.MAX_CHUNK_BYTES) {
                throw new StreamFormatException("chunk length " + len + " exceeds " + StreamLimits.MAX_CHUNK_BYTES
                        + " in section " + section.idString() + " at offset " + at);
            } else {
                chunkLeft = len;
            }
        }
        return chunkLeft > 0;
    }

    private void need() throws IOException {
        if (!advance()) {
            throw new StreamFormatException("section " + section.idString() + " body ends inside a field value at offset " + src.position());
        }
    }

    /** Skips whatever is left of the body, through the terminator. */
    void drain() throws IOException {
        while (advance()) {
            src.skip(chunkLeft);
            chunkLeft = 0;
        }
    }

    @Override
    public boolean atEnd() throws IOException {
        return !advance();
    }

    @Override
    public int u8() throws IOException {
        need();
        chunkLeft--;
        return src.u8();
    }

    @Override
    public int u16() throws IOException {
        if (chunkLeft >= 2) {
            chunkLeft -= 2;
            return src.u16();
        }
        readFully(scratch, 0, 2);
        return Le.u16(scratch, 0);
    }

    @Override
    public int i32() throws IOException {
        if (chunkLeft >= 4) {
            chunkLeft -= 4;
            return src.i32();
        }
        readFully(scratch, 0, 4);
        return Le.i32(scratch, 0);
    }

    @Override
    public long i64() throws IOException {
        if (chunkLeft >= 8) {
            chunkLeft -= 8;
            return src.i64();
        }
        readFully(scratch, 0, 8);
        return Le.i64(scratch, 0);
    }

    @Override
    public void readFully(byte[] dst, int off, int len) throws IOException {
        while (len > 0) {
            need();
            int n = (int) Math.min(len, chunkLeft);
            src.readFully(dst, off, n);
            chunkLeft -= n;
            off += n;
            len -= n;
        }
    }

    @Override
    public void readInto(MemorySegment dst, long off, long len) throws IOException {
        while (len > 0) {
            need();
            long n = Math.min(len, chunkLeft);
            src.readInto(dst, off, n);
            chunkLeft -= n;
            off += n;
            len -= n;
        }
    }

    @Override
    public void skip(long len) throws IOException {
        while (len > 0) {
            need();
            long n = Math.min(len, chunkLeft);
            src.skip(n);
            chunkLeft -= n;
            len -= n;
        }
    }

    @Override
    public String where() {
        return "offset " + src.position() + " in section " + section.idString() + " v" + section.version();
    }
}
