package dev.outproc.vfio.message;

/**
 * The errno values vfio-user replies use, from before {@link dev.outproc.core.fd.Errno} named them (Linux
 * asm-generic/errno-base.h).
 *
 * @deprecated {@link dev.outproc.core.fd.Errno#ENXIO} and {@link dev.outproc.core.fd.Errno#E2BIG} are the same
 *             values; this class only aliases them and will be removed.
 */
@Deprecated(since = "0.1.0", forRemoval = true)
public final class VfioUserErrno {
    /** No such device or address: a region or IRQ index the device does not have. */
    public static final int ENXIO = dev.outproc.core.fd.Errno.ENXIO;
    /** Argument list too long: a transfer over {@code max_data_xfer_size}, a message over the size cap. */
    public static final int E2BIG = dev.outproc.core.fd.Errno.E2BIG;

    private VfioUserErrno() {
    }
}
