package dev.outproc.examples.vfio;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;

/**
 * A device-state stream on its way out: the bytes a {@code DeviceStateWriter} wrote and MIG_DATA_READ has not
 * taken yet. Taking moves a start index; the array is compacted only when it has to grow.
 */
final class ByteQueue implements WritableByteChannel {
    private byte[] bytes = new byte[0];
    private int start;
    private int end;
    /** Of the waiting bytes, how many belong to PRE_COPY's initial data ({@link #markInitial}). */
    private long initialLeft;

    @Override
    public int write(ByteBuffer src) {
        int n = src.remaining();
        if (end + n > bytes.length) {
            byte[] grown = new byte[Math.max(end - start + n, 2 * (end - start) + 4096)];
            System.arraycopy(bytes, start, grown, 0, end - start);
            end -= start;
            start = 0;
            bytes = grown;
        }
        src.get(bytes, end, n);
        end += n;
        return n;
    }

    /** Moves up to {@code destination}'s size of the oldest bytes into it; {@return how many}. */
    long take(MemorySegment destination) {
        int n = (int) Math.min(destination.byteSize(), end - start);
        MemorySegment.copy(bytes, start, destination, ValueLayout.JAVA_BYTE, 0, n);
        start += n;
        initialLeft = Math.max(0, initialLeft - n);
        return n;
    }

    /** {@return the bytes waiting to be taken} */
    int size() {
        return end - start;
    }

    /** Drops every waiting byte. */
    void clear() {
        bytes = new byte[0];
        start = 0;
        end = 0;
        initialLeft = 0;
    }

    /** Counts every byte waiting now as PRE_COPY's initial data (VFIO_MIG_GET_PRECOPY_INFO's initial_bytes). */
    void markInitial() {
        initialLeft = size();
    }

    /** {@return how many of the initial bytes have not been taken yet} */
    long initialLeft() {
        return initialLeft;
    }

    @Override
    public boolean isOpen() {
        return true;
    }

    @Override
    public void close() {
    }
}
