package dev.outproc.migration.internal;

import dev.outproc.migration.stream.StreamTruncatedException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.security.MessageDigest;

/**
 * Buffered reader over a blocking channel with a digest tap: every consumed byte is fed to the current tap
 * (lazily, in runs, so that the per-byte cost is a few instructions). Memory is bounded by the buffer.
 */
public final class ByteSource {
    /** Size of the read buffer. */
    public static final int BUFFER_BYTES = 64 * 1024;

    private final ReadableByteChannel channel;
    private final byte[] buf = new byte[BUFFER_BYTES];
    private final ByteBuffer bb = ByteBuffer.wrap(buf);
    private int pos;
    private int limit;
    private int tapFrom;
    private long bufferStartOffset;
    private MessageDigest tap;
    private boolean eof;

    /**
     * Creates a source.
     *
     * @param channel a blocking channel
     */
    public ByteSource(ReadableByteChannel channel) {
        this.channel = channel;
    }

    /** @return stream offset of the next byte */
    public long position() {
        return bufferStartOffset + pos;
    }

    /**
     * Feeds consumed bytes to the current tap and switches to a new one (or none).
     *
     * @param newTap the digest that receives the following bytes, or null
     */
    public void setTap(MessageDigest newTap) {
        flushTap();
        tap = newTap;
    }

    private void flushTap() {
        if (tap != null && pos > tapFrom) {
            tap.update(buf, tapFrom, pos - tapFrom);
        }
        tapFrom = pos;
    }

    /** Makes at least {@code n <= BUFFER_BYTES} bytes available, or returns false at end of stream. */
    private boolean fill(int n) throws IOException {
        if (limit - pos >= n) {
            return true;
        }
        flushTap();
        if (pos > 0) {
            System.arraycopy(buf, pos, buf, 0, limit - pos);
            bufferStartOffset += pos;
            limit -= pos;
            pos = 0;
            tapFrom = 0;
        }
        while (limit < n && !eof) {
            bb.limit(buf.length).position(limit);
            int r = channel.read(bb);
            if (r < 0) {
                eof = true;
            } else if (r == 0) {
                // A non-blocking channel; the format needs a blocking one, but do not spin hot.
                Thread.onSpinWait();
            } else {
                limit += r;
            }
        }
        return limit - pos >= n;
    }

    private void require(int n) throws IOException {
        if (!fill(n)) {
            throw new StreamTruncatedException(position() + (limit - pos), n - (limit - pos));
        }
    }

    /**
     * Returns whether the stream has ended (no byte is left).
     *
     * @return true at end of stream
     * @throws IOException if the channel fails
     */
    public boolean atEnd() throws IOException {
        return !fill(1);
    }

    /**
     * @return unsigned byte
     * @throws IOException on truncation or channel failure
     */
    public int u8() throws IOException {
        require(1);
        return buf[pos++] & 0xff;
    }

    /**
     * @return unsigned 16-bit LE
     * @throws IOException on truncation or channel failure
     */
    public int u16() throws IOException {
        require(2);
        int v = Le.u16(buf, pos);
        pos += 2;
        return v;
    }

    /**
     * @return 32-bit LE
     * @throws IOException on truncation or channel failure
     */
    public int i32() throws IOException {
        require(4);
        int v = Le.i32(buf, pos);
        pos += 4;
        return v;
    }

    /**
     * @return 64-bit LE
     * @throws IOException on truncation or channel failure
     */
    public long i64() throws IOException {
        require(8);
        long v = Le.i64(buf, pos);
        pos += 8;
        return v;
    }

    /**
     * Reads exactly {@code len} bytes.
     *
     * @param dst destination
     * @param off offset in dst
     * @param len count
     * @throws IOException on truncation or channel failure
     */
    public void readFully(byte[] dst, int off, int len) throws IOException {
        while (len > 0) {
            require(1);
            int n = Math.min(len, limit - pos);
            System.arraycopy(buf, pos, dst, off, n);
            pos += n;
            off += n;
            len -= n;
        }
    }

    /**
     * Reads exactly {@code len} bytes into a segment.
     *
     * @param dst destination segment
     * @param off offset in dst
     * @param len count
     * @throws IOException on truncation or channel failure
     */
    public void readInto(MemorySegment dst, long off, long len) throws IOException {
        // First what is already buffered, then, without a digest to feed, large remainders straight from the
        // channel into the segment: no staging copy at all.
        while (len > 0 && pos < limit) {
            int n = (int) Math.min(len, limit - pos);
            MemorySegment.copy(buf, pos, dst, ValueLayout.JAVA_BYTE, off, n);
            pos += n;
            off += n;
            len -= n;
        }
        // Only native segments: a heap segment over an array other than byte[] has no ByteBuffer view.
        if (len >= BUFFER_BYTES && tap == null && dst.isNative()) {
            readDirect(dst, off, len);
            return;
        }
        while (len > 0) {
            require(1);
            int n = (int) Math.min(len, limit - pos);
            MemorySegment.copy(buf, pos, dst, ValueLayout.JAVA_BYTE, off, n);
            pos += n;
            off += n;
            len -= n;
        }
    }

    private void readDirect(MemorySegment dst, long off, long len) throws IOException {
        // The buffer is empty here (pos == limit): rebase it after the bytes that bypass it.
        long start = bufferStartOffset + pos;
        ByteBuffer target = dst.asSlice(off, len).asByteBuffer();
        while (target.hasRemaining()) {
            int r = channel.read(target);
            if (r < 0) {
                eof = true;
                throw new StreamTruncatedException(start + target.position(), target.remaining());
            }
            if (r == 0) {
                Thread.onSpinWait();
            }
        }
        bufferStartOffset = start + len;
        pos = 0;
        limit = 0;
        tapFrom = 0;
    }

    /**
     * Skips exactly {@code len} bytes (they still reach the tap).
     *
     * @param len count
     * @throws IOException on truncation or channel failure
     */
    public void skip(long len) throws IOException {
        while (len > 0) {
            require(1);
            int n = (int) Math.min(len, limit - pos);
            pos += n;
            len -= n;
        }
    }
}
