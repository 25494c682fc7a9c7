package dev.outproc.examples.blk;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

/** The storage behind a virtio-blk device: a file, a block device or memory. Offsets are in bytes. */
public interface BlockStore extends AutoCloseable {
    /** {@return the size in bytes (a multiple of 512)} */
    long sizeBytes();

    /** {@return whether writes are refused} */
    boolean readOnly();

    /**
     * Fills {@code destination} from {@code offset}.
     *
     * @param offset byte offset
     * @param destination where the bytes go (guest memory, zero-copy)
     * @throws IOException when the underlying storage fails
     */
    void read(long offset, MemorySegment destination) throws IOException;

    /**
     * Writes {@code source} at {@code offset}.
     *
     * @param offset byte offset
     * @param source the bytes (guest memory, zero-copy)
     * @throws IOException when the underlying storage fails
     */
    void write(long offset, MemorySegment source) throws IOException;

    /**
     * Makes written data durable (FLUSH).
     *
     * @throws IOException when the store cannot make the data durable
     */
    void flush() throws IOException;

    /**
     * Zeroes a range (WRITE_ZEROES, and DISCARD, which reads back as zeroes here).
     *
     * @param offset byte offset
     * @param length byte count
     * @throws IOException when the underlying storage fails
     */
    void writeZeroes(long offset, long length) throws IOException;

    /** {@return a short description for logs and the demo} */
    String describe();

    @Override
    void close() throws IOException;
}
