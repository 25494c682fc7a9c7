package dev.outproc.migration.internal;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.security.MessageDigest;

/** Buffered writer over a blocking channel with a digest tap, the mirror of {@link ByteSource}. */
public final class ByteSink {
    /** Size of the write buffer. */
    public static final int BUFFER_BYTES = 64 * 1024;

    private final WritableByteChannel channel;
    private final byte[] buf = new byte[BUFFER_BYTES];
    private final ByteBuffer bb = ByteBuffer.wrap(buf);
    private int pos;
    private int tapFrom;
    private long flushedBytes;
    private MessageDigest tap;

    /**
     * Creates a sink.
     *
     * @param channel a blocking channel
     */
    public ByteSink(WritableByteChannel channel) {
        this.channel = channel;
    }

    /** @return number of bytes written so far (buffered included) */
    public long position() {
        return flushedBytes + pos;
    }

    /**
     * Feeds written bytes to the current tap and switches to a new one (or none).
     *
     * @param newTap digest for the following bytes, or null
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

    /**
     * Writes the buffer to the channel.
     *
     * @throws IOException if the channel fails
     */
    public void flush() throws IOException {
        flushTap();
        bb.limit(pos).position(0);
        while (bb.hasRemaining()) {
            channel.write(bb);
        }
        flushedBytes += pos;
        pos = 0;
        tapFrom = 0;
    }

    private void ensure(int n) throws IOException {
        if (buf.length - pos < n) {
            flush();
        }
    }

    /**
     * @param v byte
     * @throws IOException if the channel fails
     */
    public void u8(int v) throws IOException {
        ensure(1);
        buf[pos++] = (byte) v;
    }

    /**
     * @param v 16-bit value
     * @throws IOException if the channel fails
     */
    public void u16(int v) throws IOException {
        ensure(2);
        Le.put16(buf, pos, v);
        pos += 2;
    }

    /**
     * @param v 32-bit value
     * @throws IOException if the channel fails
     */
    public void i32(int v) throws IOException {
        ensure(4);
        Le.put32(buf, pos, v);
        pos += 4;
    }

    /**
     * @param v 64-bit value
     * @throws IOException if the channel fails
     */
    public void i64(long v) throws IOException {
        ensure(8);
        Le.put64(buf, pos, v);
        pos += 8;
    }

    /**
     * Writes bytes.
     *
     * @param src source
     * @param off offset
     * @param len count
     * @throws IOException if the channel fails
     */
    public void write(byte[] src, int off, int len) throws IOException {
        while (len > 0) {
            ensure(1);
            int n = Math.min(len, buf.length - pos);
            System.arraycopy(src, off, buf, pos, n);
            pos += n;
            off += n;
            len -= n;
        }
    }

    /**
     * Writes bytes from a segment, copying once into the buffer.
     *
     * @param src source segment
     * @param off offset in src
     * @param len count
     * @throws IOException if the channel fails
     */
    public void writeFrom(MemorySegment src, long off, long len) throws IOException {
        // Only native segments: a heap segment over an array other than byte[] has no ByteBuffer view.
        if (len >= BUFFER_BYTES && tap == null && src.isNative()) {
            // Without a digest to feed, a large blob goes from its segment to the channel with no staging copy.
            flush();
            ByteBuffer source = src.asSlice(off, len).asByteBuffer();
            while (source.hasRemaining()) {
                channel.write(source);
            }
            flushedBytes += len;
            return;
        }
        while (len > 0) {
            ensure(1);
            int n = (int) Math.min(len, buf.length - pos);
            MemorySegment.copy(src, ValueLayout.JAVA_BYTE, off, buf, pos, n);
            pos += n;
            off += n;
            len -= n;
        }
    }
}
