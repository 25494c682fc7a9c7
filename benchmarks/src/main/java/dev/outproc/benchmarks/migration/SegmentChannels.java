package dev.outproc.benchmarks.migration;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;

/** In-memory channels over a segment, so the benchmark measures the codec and not a pipe or a disk. */
final class SegmentChannels {
    private SegmentChannels() {}

    /** Writes into a preallocated segment; {@link #reset()} rewinds. */
    static final class Sink implements WritableByteChannel {
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
            MemorySegment.copy(MemorySegment.ofBuffer(src), 0, target, position, n);
            src.position(src.position() + n);
            position += n;
            return n;
        }

        @Override
        public boolean isOpen() {
            return true;
        }

        @Override
        public void close() {
            // the segment belongs to the benchmark state
        }
    }

    /** Reads a segment's first {@code length} bytes; {@link #reset()} rewinds. */
    static final class Source implements ReadableByteChannel {
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
            MemorySegment.copy(source, position, MemorySegment.ofBuffer(dst), 0, n);
            dst.position(dst.position() + n);
            position += n;
            return n;
        }

        @Override
        public boolean isOpen() {
            return true;
        }

        @Override
        public void close() {
            // the segment belongs to the benchmark state
        }
    }
}
