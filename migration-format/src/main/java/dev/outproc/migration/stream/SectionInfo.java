package dev.outproc.migration.stream;

/**
 * The header of the section a reader is positioned on.
 *
 * @param id section id (chosen by the format class)
 * @param version section version
 * @param flags section flags
 * @param sequence position of the section in the stream, from 0
 * @param offset stream offset of the section frame
 */
public record SectionInfo(int id, int version, int flags, int sequence, long offset) {
    /** @return whether a reader that does not know the section must refuse the stream */
    public boolean mustUnderstand() {
        return (flags & StreamLayout.SECTION_MUST_UNDERSTAND) != 0;
    }

    /** @return whether the body is a vendor envelope */
    public boolean envelope() {
        return (flags & StreamLayout.SECTION_ENVELOPE) != 0;
    }

    /** @return the id as an unsigned decimal string */
    public String idString() {
        return Integer.toUnsignedString(id);
    }
}
