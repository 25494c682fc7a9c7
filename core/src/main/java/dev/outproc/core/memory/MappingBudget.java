package dev.outproc.core.memory;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A cap on the bytes a peer can make us map. Each {@code mmap} of a peer's file costs address space
 * even when the file is sparse, and a front-end may describe hundreds of regions of many TiB each:
 * without a cap it can exhaust the process's address space and make every later mapping, of every
 * connection, fail. Reserve before mapping, close the reservation after unmapping. Thread-safe; a
 * reservation is released exactly once.
 *
 * {@snippet :
 * try (MappingBudget.Reservation r = budget.reserve(sizeBytes, "SET_MEM_TABLE region 3")) {
 *     GuestRegion region = GuestRegion.map(gpa, sizeBytes, userAddr, offset, fd, false);
 *     keep(region, r.keep()); // released when the region is unmapped
 * }
 * }
 */
public final class MappingBudget {
    private final long maxBytes;
    private final AtomicLong reserved = new AtomicLong();

    private MappingBudget(long maxBytes) {
        this.maxBytes = maxBytes;
    }

    /**
     * {@return a budget of at most {@code maxBytes} mapped at once}
     *
     * @param maxBytes the cap, {@code > 0}
     */
    public static MappingBudget of(long maxBytes) {
        if (maxBytes <= 0) {
            throw new IllegalArgumentException("maxBytes must be > 0, maxBytes=" + maxBytes);
        }
        return new MappingBudget(maxBytes);
    }

    /**
     * Reserves {@code bytes} of the budget.
     *
     * @param bytes the size about to be mapped, {@code >= 0}
     * @param what what is mapped, for the error message
     * @return the reservation; close it to give the bytes back
     * @throws GuestMemoryException when the budget has not that much left, naming the sizes
     */
    public Reservation reserve(long bytes, String what) throws GuestMemoryException {
        if (bytes < 0) {
            throw new IllegalArgumentException("bytes must be >= 0, bytes=" + bytes);
        }
        while (true) {
            long now = reserved.get();
            if (bytes > maxBytes - now) {
                throw new GuestMemoryException("mapping budget exceeded by " + what + ": " + Unsigned.hex(bytes)
                        + " bytes asked, " + Unsigned.hex(now) + " of " + Unsigned.hex(maxBytes) + " in use");
            }
            if (reserved.compareAndSet(now, now + bytes)) {
                return new Reservation(bytes);
            }
        }
    }

    /** {@return the bytes reserved now} */
    public long reservedBytes() {
        return reserved.get();
    }

    /** {@return the cap} */
    public long maxBytes() {
        return maxBytes;
    }

    /** Bytes taken from a {@link MappingBudget}; closing gives them back once. */
    public final class Reservation implements AutoCloseable {
        private final long bytes;
        private final AtomicBoolean released = new AtomicBoolean();
        private volatile boolean kept;

        private Reservation(long bytes) {
            this.bytes = bytes;
        }

        /** {@return the bytes reserved} */
        public long bytes() {
            return bytes;
        }

        /**
         * Keeps the bytes reserved beyond a try-with-resources block (the mapping succeeded); release
         * them later with {@link #release()}.
         *
         * @return this reservation
         */
        public Reservation keep() {
            kept = true;
            return this;
        }

        /** Gives the bytes back, once, whether kept or not. */
        public void release() {
            if (released.compareAndSet(false, true)) {
                reserved.addAndGet(-bytes);
            }
        }

        /** Gives the bytes back unless {@link #keep()} was called. */
        @Override
        public void close() {
            if (!kept) {
                release();
            }
        }
    }
}
