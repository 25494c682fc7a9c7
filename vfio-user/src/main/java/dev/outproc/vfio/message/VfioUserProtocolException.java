package dev.outproc.vfio.message;

import java.io.IOException;

/**
 * A message that breaks the vfio-user protocol, with the errno the peer gets in the error reply (when
 * the message can be answered at all) and the offending values in the message.
 */
public class VfioUserProtocolException extends IOException {
    private static final long serialVersionUID = 1L;

    private final int errno;

    /**
     * Creates the exception.
     *
     * @param errno the UNIX errno for the error reply
     * @param message what is wrong, with the values involved
     */
    public VfioUserProtocolException(int errno, String message) {
        super(message);
        this.errno = errno;
    }

    /** {@return the UNIX errno for the error reply} */
    public int errno() {
        return errno;
    }
}
