package dev.outproc.vfio.client;

import dev.outproc.core.fd.Errno;
import dev.outproc.vfio.message.MigrationFeature;
import dev.outproc.vfio.message.VfioUserProtocolException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Moves a device from one vfio-user server into another with migration v2: the destination goes to
 * RESUMING, the source to PRE_COPY when both offer it (its bytes stream across while it runs) and then
 * STOP_COPY, every byte read with MIG_DATA_READ is written with MIG_DATA_WRITE in order, and the
 * destination goes STOP then RUNNING (where it checks what it got). The stream is the concatenation of
 * everything read, as with the kernel's data_fd.
 */
public final class MigrationDriver {
    /** State numbers of linux/vfio.h used here. */
    private static final int STOP = 1;
    private static final int RUNNING = 2;
    private static final int STOP_COPY = 3;
    private static final int RESUMING = 4;
    private static final int PRE_COPY = 6;

    private MigrationDriver() {
    }

    /**
     * What a migration did.
     *
     * @param preCopyBytes bytes moved during PRE_COPY (0 when it was skipped)
     * @param stopCopyBytes bytes moved during STOP_COPY
     * @param sourceState the source's final state
     * @param destinationState the destination's final state
     */
    public record Result(long preCopyBytes, long stopCopyBytes, int sourceState, int destinationState) {
        /** {@return all bytes moved} */
        public long totalBytes() {
            return preCopyBytes + stopCopyBytes;
        }
    }

    /**
     * Migrates.
     *
     * @param source a negotiated client of the running source server
     * @param destination a negotiated client of a fresh destination server
     * @param chunkBytes the size of each MIG_DATA_READ
     * @return what moved and the final states
     * @throws IOException when a server refuses an arc or the data
     */
    public static Result migrate(VfioUserClient source, VfioUserClient destination, int chunkBytes) throws IOException {
        return migrate(source, destination, chunkBytes, true);
    }

    /**
     * Migrates, with PRE_COPY only when allowed and both servers offer it. A server whose STOP_COPY stream
     * starts over instead of continuing its PRE_COPY bytes (libvfio-user's {@code samples/server} does that)
     * migrates with {@code allowPreCopy} false.
     *
     * @param source a negotiated client of the running source server
     * @param destination a negotiated client of a fresh destination server
     * @param chunkBytes the size of each MIG_DATA_READ
     * @param allowPreCopy whether to use PRE_COPY when both servers offer it
     * @return what moved and the final states
     * @throws IOException when a server refuses an arc or the data
     */
    public static Result migrate(VfioUserClient source, VfioUserClient destination, int chunkBytes, boolean allowPreCopy)
            throws IOException {
        long from = source.migrationFlags();
        long to = destination.migrationFlags();
        if (from < 0 || to < 0 || (from & MigrationFeature.STOP_COPY) == 0 || (to & MigrationFeature.STOP_COPY) == 0) {
            throw new VfioUserProtocolException(Errno.ENOTSUP, "both servers must offer STOP_COPY, flags 0x" + Long.toHexString(from)
                    + " and 0x" + Long.toHexString(to));
        }
        boolean preCopy = allowPreCopy && (from & MigrationFeature.PRE_COPY) != 0 && (to & MigrationFeature.PRE_COPY) != 0;
        destination.migrationState(RESUMING);
        long pre = 0;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment chunk = arena.allocate(chunkBytes);
            if (preCopy) {
                source.migrationState(PRE_COPY);
                pre = pump(source, destination, chunk);
            }
            source.migrationState(STOP_COPY);
            long stop = pump(source, destination, chunk);
            int sourceState = source.migrationState(STOP);
            destination.migrationState(STOP);
            int destinationState = destination.migrationState(RUNNING);
            return new Result(pre, stop, sourceState, destinationState);
        }
    }

    private static long pump(VfioUserClient source, VfioUserClient destination, MemorySegment chunk) throws IOException {
        long total = 0;
        while (true) {
            long n = source.readMigrationData(chunk);
            if (n > 0) {
                destination.writeMigrationData(chunk.asSlice(0, n));
            }
            total += n;
            if (n < chunk.byteSize()) {
                return total;
            }
        }
    }
}
