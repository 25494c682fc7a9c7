package dev.outproc.vhost.program;

/**
 * A back-end program's command line is wrong: the message is one line for the user, with the
 * offending value.
 */
public final class BackendUsageException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message what is wrong, one line
     */
    public BackendUsageException(String message) {
        super(message);
    }
}
