package dev.outproc.vfio.server;

/**
 * Estimates of the migration data a device in PRE_COPY has left, the figures of linux/vfio.h
 * {@code VFIO_MIG_GET_PRECOPY_INFO} ({@code struct vfio_precopy_info}).
 *
 * <p>vfio-user carries no equivalent message: vfio-user.rst replaces the data fd by MIG_DATA_READ and defines
 * nothing for the ioctl on it. A remote client learns that the initial part is done from a short MIG_DATA_READ
 * (the kernel's temporary end of stream, {@code ENOMSG}); the estimates are for the device's own process
 * ({@link VfioUserServer#preCopyInfo()}, logs, a management endpoint of its own).
 *
 * @param initialBytes initial data not read yet: non-zero at first, it falls as MIG_DATA_READ takes it; leaving
 *        PRE_COPY before it reaches zero makes STOP_COPY longer
 * @param dirtyBytes device state changed since it was read: zero at first, it grows while the device runs
 */
public record PreCopyInfo(long initialBytes, long dirtyBytes) {
    /** Checks the values. */
    public PreCopyInfo {
        if (initialBytes < 0 || dirtyBytes < 0) {
            throw new IllegalArgumentException("estimates must not be negative, initial=" + initialBytes + " dirty=" + dirtyBytes);
        }
    }
}
