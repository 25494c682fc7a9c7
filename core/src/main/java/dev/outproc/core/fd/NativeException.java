package dev.outproc.core.fd;

import java.io.IOException;

/**
 * A Linux system call failed. The message names the call, the symbolic errno with its number,
 * and the arguments, for example {@code mmap(len=4096, prot=3, flags=1, fd=7, offset=0) failed: EINVAL (22)}.
 */
public final class NativeException extends IOException {
    private static final long serialVersionUID = 1L;

    private final String call;
    private final int errno;

    /**
     * Creates an exception for a failed call.
     *
     * @param call the call with its arguments, as text
     * @param errno the errno the call left
     */
    public NativeException(String call, int errno) {
        super(call + " failed: " + Errno.name(errno) + " (" + errno + ")" + describe(errno));
        this.call = call;
        this.errno = errno;
    }

    private static String describe(int errno) {
        String text = Errno.description(errno);
        return text.isEmpty() ? "" : ": " + text;
    }

    /** {@return the call and its arguments, as text} */
    public String call() {
        return call;
    }

    /** {@return the errno value the call left} */
    public int errno() {
        return errno;
    }

    /** {@return the symbolic errno name, such as {@code EINVAL}} */
    public String errnoName() {
        return Errno.name(errno);
    }
}
