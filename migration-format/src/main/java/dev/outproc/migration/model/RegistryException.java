package dev.outproc.migration.model;

import java.io.IOException;

/** A registry file is malformed, violates a limit, contradicts itself, or conflicts with another on merge. */
public class RegistryException extends IOException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message what is wrong, with the values involved
     */
    public RegistryException(String message) {
        super(message);
    }

    /**
     * Creates the exception with a cause.
     *
     * @param message what is wrong
     * @param cause underlying failure
     */
    public RegistryException(String message, Throwable cause) {
        super(message, cause);
    }
}
