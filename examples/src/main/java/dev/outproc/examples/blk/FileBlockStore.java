package dev.outproc.examples.blk;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** A {@link BlockStore} over a file or block device, read and written in place through {@link FileChannel}. */
public final class FileBlockStore implements BlockStore {
    private static final int ZERO_CHUNK = 1 << 20;
    /**
     * The most bytes one FileChannel call moves: a descriptor may describe up to 4 GiB - 1, but a
     * {@link ByteBuffer} view of a segment holds less than 2 GiB ({@code asByteBuffer} throws beyond).
     */
    static final int MAX_CHUNK = 1 << 30;

    private final Path path;
    private final FileChannel file;
    private final long sizeBytes;
    private final boolean readOnly;

    private FileBlockStore(Path path, FileChannel file, long sizeBytes, boolean readOnly) {
        this.path = path;
        this.file = file;
        this.sizeBytes = sizeBytes;
        this.readOnly = readOnly;
    }

    /**
     * Opens an image.
     *
     * @param path the file or block device
     * @param readOnly open read-only
     * @return the store
     * @throws IOException when the file cannot be opened or is not a multiple of 512 bytes
     */
    public static FileBlockStore open(Path path, boolean readOnly) throws IOException {
        if (!Files.exists(path)) {
            throw new IOException("image not found: " + path);
        }
        FileChannel file = readOnly ? FileChannel.open(path, StandardOpenOption.READ)
                : FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
        long size = file.size();
        if (size == 0 && !Files.isRegularFile(path)) {
            size = file.position(0).size();
        }
        if (size % 512 != 0 || size == 0) {
            file.close();
            throw new IOException("image size must be a non-zero multiple of 512 bytes, size=" + size + ": " + path);
        }
        return new FileBlockStore(path, file, size, readOnly);
    }

    @Override
    public long sizeBytes() {
        return sizeBytes;
    }

    @Override
    public boolean readOnly() {
        return readOnly;
    }

    @Override
    public void read(long offset, MemorySegment destination) throws IOException {
        read(offset, destination, MAX_CHUNK);
    }

    /** {@link #read(long, MemorySegment)} in pieces of at most {@code chunk} bytes (a ByteBuffer holds < 2 GiB). */
    void read(long offset, MemorySegment destination, int chunk) throws IOException {
        for (long at = 0; at < destination.byteSize(); at += chunk) {
            MemorySegment piece = destination.asSlice(at, Math.min(chunk, destination.byteSize() - at));
            ByteBuffer b = piece.asByteBuffer();
            long position = offset + at;
            while (b.hasRemaining()) {
                int n = file.read(b, position);
                if (n < 0) {
                    // Past the end of a sparse file: the rest reads as zeroes.
                    destination.asSlice(at + b.position()).fill((byte) 0);
                    return;
                }
                position += n;
            }
        }
    }

    @Override
    public void write(long offset, MemorySegment source) throws IOException {
        write(offset, source, MAX_CHUNK);
    }

    /** {@link #write(long, MemorySegment)} in pieces of at most {@code chunk} bytes. */
    void write(long offset, MemorySegment source, int chunk) throws IOException {
        for (long at = 0; at < source.byteSize(); at += chunk) {
            ByteBuffer b = source.asSlice(at, Math.min(chunk, source.byteSize() - at)).asByteBuffer();
            long position = offset + at;
            while (b.hasRemaining()) {
                position += file.write(b, position);
            }
        }
    }

    @Override
    public void flush() throws IOException {
        file.force(false);
    }

    @Override
    public void writeZeroes(long offset, long length) throws IOException {
        ByteBuffer zeroes = ByteBuffer.allocateDirect((int) Math.min(ZERO_CHUNK, length));
        long done = 0;
        while (done < length) {
            zeroes.clear().limit((int) Math.min(zeroes.capacity(), length - done));
            while (zeroes.hasRemaining()) {
                done += file.write(zeroes, offset + done);
            }
        }
    }

    @Override
    public String describe() {
        return "file " + path + " (" + (sizeBytes >> 20) + " MiB" + (readOnly ? ", read-only" : "") + ")";
    }

    @Override
    public void close() throws IOException {
        file.close();
    }
}
