package dev.outproc.core.memory;

import dev.outproc.core.fd.NativeException;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.internal.linux.Linux;

/** Anonymous shared memory files ({@code memfd_create}), the backing of shareable guest memory. */
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

    /**
     * Creates a close-on-exec memfd of {@code sizeBytes} bytes (zero-filled).
     *
     * @param name a name for debugging ({@code /proc/self/fd} shows it)
     * @param sizeBytes the size
     * @return the fd
     * @throws NativeException when memfd_create or ftruncate fails
     */
    public static OwnedFd create(String name, long sizeBytes) throws NativeException {
        return create(name, sizeBytes, false);
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
     * {@return the size of a file in bytes ({@code fstat}: the file offset, which a peer may share, stays put)}
     *
     * @param fd the file
     * @throws NativeException when fstat fails
     */
    public static long size(int fd) throws NativeException {
        return Linux.fileSize(fd);
    }
}
