package dev.outproc.benchmarks.migration;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.Channel;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;

/** In-memory channels over a segment, so the benchmark measures the codec and not a pipe or a disk. */
final class SegmentChannels {
    private SegmentChannels() {}

    /** Always open; closing does nothing, as the segment belongs to the benchmark state. */
    private abstract static class OverSegment implements Channel {
        @Override
        public final boolean isOpen() {
            return true;
        }

        @Override
        public final void close() {
        }
    }

    /** Writes into a preallocated segment; {@link #reset()} rewinds. */
    static final class Sink extends OverSegment implements WritableByteChannel {
        private final MemorySegment target;
        private long position;

        Sink(MemorySegment target) {
            this.target = target;
        }

        void reset() {
            position = 0;
        }

        long position() {
            return position;
        }

        @Override
        public int write(ByteBuffer src) {
            int n = src.remaining();
            // The stream's buffers are heap arrays: copy from the array so the channel itself allocates nothing.
            if (src.hasArray()) {
                MemorySegment.copy(src.array(), src.arrayOffset() + src.position(), target, ValueLayout.JAVA_BYTE, position, n);
            } else {
                MemorySegment.copy(MemorySegment.ofBuffer(src), 0, target, position, n);
            }
            src.position(src.position() + n);
            position += n;
            return n;
        }
    }

    /** Reads a segment's first {@code length} bytes; {@link #reset()} rewinds. */
    static final class Source extends OverSegment implements ReadableByteChannel {
        private final MemorySegment source;
        private final long length;
        private long position;

        Source(MemorySegment source, long length) {
            this.source = source;
            this.length = length;
        }

        void reset() {
            position = 0;
        }

        @Override
        public int read(ByteBuffer dst) {
            if (position == length) {
                return -1;
            }
            int n = (int) Math.min(dst.remaining(), length - position);
            if (dst.hasArray()) {
                MemorySegment.copy(source, ValueLayout.JAVA_BYTE, position, dst.array(), dst.arrayOffset() + dst.position(), n);
            } else {
                MemorySegment.copy(source, position, MemorySegment.ofBuffer(dst), 0, n);
            }
            dst.position(dst.position() + n);
            position += n;
            return n;
        }
    }
}
