package dev.outproc.migration.stream;

/**
 * A must-understand section is unknown to the reader, or a section's version lies outside the range the
 * reader accepts.
 */
public class UnsupportedSectionException extends MigrationStreamException {
    private static final long serialVersionUID = 1L;

    private final int sectionId;
    private final int sectionVersion;

    /**
     * Creates the exception.
     *
     * @param sectionId the section's id
     * @param sectionVersion the section's version
     * @param message why the reader refuses it
     */
    public UnsupportedSectionException(int sectionId, int sectionVersion, String message) {
        super(message);
        this.sectionId = sectionId;
        this.sectionVersion = sectionVersion;
    }

    /**
     * Returns the refused section's id.
     *
     * @return the section id
     */
    public int sectionId() {
        return sectionId;
    }

    /**
     * Returns the refused section's version.
     *
     * @return the section version
     */
    public int sectionVersion() {
        return sectionVersion;
    }
}
