package dev.outproc.core.memory;

import dev.outproc.core.fd.Errno;
import dev.outproc.core.fd.NativeException;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.internal.linux.Linux;

/**
 * Anonymous shared memory files ({@code memfd_create}), the backing of shareable guest memory, and the
 * checks a back-end makes on a memory fd a peer sends before mapping it.
 *
 * <h2 id="shrink">A file that shrinks under a mapping</h2>
 * Touching a mapped page beyond the end of its file raises {@code SIGBUS}, and HotSpot does not turn that
 * into an exception on every access path: the whole process aborts. A peer that keeps a copy of a memory fd
 * can truncate it at any time after we mapped it. Two defences, both here: {@link #requireCovers} refuses a
 * file already too small for the mapping (fstat, before mmap), and {@link #sealAgainstShrink} adds
 * {@code F_SEAL_SHRINK} where the file allows it, after which no one can make it smaller. What real peers
 * send: QEMU's {@code memory-backend-memfd} seals {@code GROW | SHRINK | SEAL} by default ({@code seal=on});
 * outproc's own front-end creates its guest RAM with {@code GROW | SHRINK} and leaves sealing open. A file
 * that cannot be sealed (a memfd made without {@code MFD_ALLOW_SEALING}, a tmpfs or hugetlbfs file) stays
 * a risk the caller must weigh: refuse it, or accept it with a logged warning.
 */
public final class MemFd {
    /** Seal: no more seals may be added. */
    public static final int SEAL_SEAL = Linux.F_SEAL_SEAL;
    /** Seal: the file may not shrink. */
    public static final int SEAL_SHRINK = Linux.F_SEAL_SHRINK;
    /** Seal: the file may not grow. */
    public static final int SEAL_GROW = Linux.F_SEAL_GROW;
    /** Seal: the contents may not be written. */
    public static final int SEAL_WRITE = Linux.F_SEAL_WRITE;

    private MemFd() {
    }

    /** What {@link #sealAgainstShrink} found or did. */
    public enum ShrinkSeal {
        /** The file carried {@code F_SEAL_SHRINK} already (QEMU's default). */
        ALREADY_SEALED,
        /** The file allowed sealing, and now carries {@code F_SEAL_SHRINK}. */
        SEALED_NOW,
        /**
         * The file's seals are locked ({@code F_SEAL_SEAL}) without {@code F_SEAL_SHRINK}: a memfd created
         * without {@code MFD_ALLOW_SEALING}, or a tmpfs or hugetlbfs file. It may shrink under a mapping.
         */
        SEALING_NOT_ALLOWED,
        /** The file does not support seals at all ({@code EINVAL}: not a shmem file). */
        NOT_SEALABLE;

        /** {@return whether the file can no longer shrink} */
        public boolean protects() {
            return this == ALREADY_SEALED || this == SEALED_NOW;
        }
    }

    /**
     * Creates a close-on-exec memfd of {@code sizeBytes} bytes (zero-filled) that allows sealing
     * ({@code MFD_ALLOW_SEALING}), so that whoever maps it may protect the mapping with {@link #sealAgainstShrink}.
     *
     * @param name a name for debugging ({@code /proc/self/fd} shows it)
     * @param sizeBytes the size
     * @return the fd
     * @throws NativeException when memfd_create or ftruncate fails
     */
    public static OwnedFd create(String name, long sizeBytes) throws NativeException {
        return create(name, sizeBytes, true);
    }

    /**
     * Creates a memfd, optionally allowing seals.
     *
     * @param name a name for debugging
     * @param sizeBytes the size
     * @param allowSealing whether {@link #addSeals} may be used
     * @return the fd
     * @throws NativeException when memfd_create or ftruncate fails
     */
    public static OwnedFd create(String name, long sizeBytes, boolean allowSealing) throws NativeException {
        if (sizeBytes < 0) {
            throw new IllegalArgumentException("sizeBytes must be >= 0, sizeBytes=" + sizeBytes);
        }
        int flags = Linux.MFD_CLOEXEC | (allowSealing ? Linux.MFD_ALLOW_SEALING : 0);
        OwnedFd fd = OwnedFd.of(Linux.memfdCreate(name, flags));
        try {
            Linux.ftruncate(fd.get(), sizeBytes);
        } catch (NativeException e) {
            fd.close();
            throw e;
        }
        return fd;
    }

    /**
     * Adds seals ({@link #SEAL_SHRINK} and so on) to a memfd created with sealing allowed.
     *
     * @param fd the memfd
     * @param seals the seal bits
     * @throws NativeException when fcntl fails (EPERM when sealing is not allowed)
     */
    public static void addSeals(OwnedFd fd, int seals) throws NativeException {
        Linux.fcntl(fd.get(), Linux.F_ADD_SEALS, seals);
    }

    /**
     * {@return the seals of a memfd}
     *
     * @param fd the memfd
     * @throws NativeException when fcntl fails
     */
    public static int seals(OwnedFd fd) throws NativeException {
        return Linux.fcntl(fd.get(), Linux.F_GET_SEALS, 0);
    }

    /**
     * Makes sure a memory fd can no longer shrink: reads its seals and adds {@code F_SEAL_SHRINK} when it
     * lacks it and sealing is still open. The seal belongs to the file, so it binds the peer as well (a
     * front-end that wanted to shrink its guest RAM under a running back-end was about to crash it).
     *
     * @param fd the memory fd, typically just received from a peer
     * @return what was found or done; {@link ShrinkSeal#protects()} tells whether the file is safe to map
     * @throws NativeException when fcntl fails other than by {@code EINVAL} (no seals) or {@code EPERM} (locked)
     */
    public static ShrinkSeal sealAgainstShrink(int fd) throws NativeException {
        int seals;
        try {
            seals = Linux.fcntl(fd, Linux.F_GET_SEALS, 0);
        } catch (NativeException e) {
            if (e.errno() == Errno.EINVAL) {
                return ShrinkSeal.NOT_SEALABLE;
            }
            throw e;
        }
        if ((seals & SEAL_SHRINK) != 0) {
            return ShrinkSeal.ALREADY_SEALED;
        }
        if ((seals & SEAL_SEAL) != 0) {
            return ShrinkSeal.SEALING_NOT_ALLOWED;
        }
        try {
            Linux.fcntl(fd, Linux.F_ADD_SEALS, SEAL_SHRINK);
        } catch (NativeException e) {
            if (e.errno() == Errno.EPERM) {
                return ShrinkSeal.SEALING_NOT_ALLOWED; // sealed shut meanwhile
            }
            throw e;
        }
        return ShrinkSeal.SEALED_NOW;
    }

    /**
     * Refuses a file too small for a mapping of {@code length} bytes at {@code offset}: every page past the
     * file's end would raise {@code SIGBUS} when touched.
     *
     * @param fd the file
     * @param offset where the mapping starts in the file
     * @param length the mapping's length
     * @throws GuestMemoryException when the file ends before {@code offset + length}, naming both
     * @throws NativeException when fstat fails
     */
    public static void requireCovers(int fd, long offset, long length) throws GuestMemoryException, NativeException {
        long size = Linux.fileSize(fd);
        if (offset < 0 || length < 0 || offset > size || length > size - offset) {
            throw new GuestMemoryException("memory fd too small for the mapping: file size=" + size + ", offset="
                    + Unsigned.hex(offset) + ", length=" + Unsigned.hex(length) + " (pages past the end would raise SIGBUS)");
        }
    }

    /**
     * {@return the size of a file in bytes ({@code fstat}: the file offset, which a peer may share, stays put)}
     *
     * @param fd the file
     * @throws NativeException when fstat fails
     */
    public static long size(int fd) throws NativeException {
        return Linux.fileSize(fd);
    }
}
