package dev.outproc.migration.stream;

/**
 * A digest, the transcript, the MAC or the signature does not match, the sections are out of order, or the
 * stream's header does not belong to the handshake this reader was opened for (a replayed stream).
 */
public class StreamIntegrityException extends MigrationStreamException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message what did not match, with expected and actual values
     */
    public StreamIntegrityException(String message) {
        super(message);
    }
}
