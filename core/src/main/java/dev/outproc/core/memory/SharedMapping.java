package dev.outproc.core.memory;

import dev.outproc.core.fd.NativeException;
import dev.outproc.core.internal.linux.Linux;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A {@code MAP_SHARED} mapping of a file, exposed as a {@link MemorySegment} tied to a shared
 * {@link Arena}: {@link #close()} unmaps it, and any later access (from any thread) throws
 * {@link IllegalStateException} instead of touching unmapped memory.
 *
 * <p>Spatial bounds: {@code [0, sizeBytes)}. Temporal bounds: until {@link #close()}.
 */
public final class SharedMapping implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(SharedMapping.class.getName());

    private final Arena arena;
    private final MemorySegment segment;
    private final boolean writable;

    private SharedMapping(Arena arena, MemorySegment segment, boolean writable) {
        this.arena = arena;
        this.segment = segment;
        this.writable = writable;
    }

    /**
     * Maps {@code sizeBytes} bytes of {@code fd} from file offset {@code fileOffset}. The offset need
     * not be page-aligned: the mapping starts at the page below and the segment is sliced.
     *
     * @param fd the file (it may be closed after this returns; the mapping stays)
     * @param fileOffset where the mapping starts in the file
     * @param sizeBytes the length, {@code > 0}
     * @param writable map read-write, else read-only
     * @return the mapping
     * @throws NativeException when mmap fails
     */
    @SuppressWarnings("restricted")
    public static SharedMapping map(int fd, long fileOffset, long sizeBytes, boolean writable) throws NativeException {
        if (sizeBytes <= 0) {
            throw new IllegalArgumentException("sizeBytes must be > 0, sizeBytes=" + sizeBytes);
        }
        if (fileOffset < 0) {
            throw new IllegalArgumentException("fileOffset must be >= 0, fileOffset=" + fileOffset);
        }
        long pageOffset = fileOffset & 4095L;
        long mapOffset = fileOffset - pageOffset;
        long mapLength = Math.addExact(sizeBytes, pageOffset);
        int prot = Linux.PROT_READ | (writable ? Linux.PROT_WRITE : 0);
        MemorySegment raw = Linux.mmap(mapLength, prot, Linux.MAP_SHARED, fd, mapOffset);
        long address = raw.address();
        Arena arena = Arena.ofShared();
        MemorySegment whole = raw.reinterpret(mapLength, arena, ignored -> unmap(address, mapLength));
        return new SharedMapping(arena, whole.asSlice(pageOffset, sizeBytes), writable);
    }

    private static void unmap(long address, long length) {
        try {
            Linux.munmap(address, length);
        } catch (NativeException e) {
            LOG.log(System.Logger.Level.WARNING, "munmap failed", e);
        }
    }

    /** {@return the mapped bytes; read-only segments refuse writes} */
    public MemorySegment segment() {
        return writable ? segment : segment.asReadOnly();
    }

    /** {@return the size in bytes} */
    public long sizeBytes() {
        return segment.byteSize();
    }

    /** {@return whether the mapping is still alive} */
    public boolean isAlive() {
        return arena.scope().isAlive();
    }

    /**
     * Unmaps. Threads that access the segment afterwards get {@link IllegalStateException}. When a
     * native call holds the segment at this moment, the unmap is retried until that call returns.
     */
    @Override
    public void close() {
        while (arena.scope().isAlive()) {
            try {
                arena.close();
            } catch (IllegalStateException busy) {
                // Held by a downcall (read/write into guest memory): wait for it to return.
                Thread.onSpinWait();
            }
        }
    }
}
