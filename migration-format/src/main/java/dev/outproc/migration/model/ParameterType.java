package dev.outproc.migration.model;

import java.util.Locale;

/** Type of a device-model parameter; its JSON name is the lower-case constant name. */
public enum ParameterType {
    /** true or false. */
    BOOL(0),
    /** Unsigned 8-bit integer. */
    UINT8(8),
    /** Unsigned 16-bit integer. */
    UINT16(16),
    /** Unsigned 32-bit integer. */
    UINT32(32),
    /** Unsigned 64-bit integer. */
    UINT64(64),
    /** Signed 64-bit integer. */
    INT64(64),
    /** UTF-8 string. */
    STRING(0);

    private final int bits;

    ParameterType(int bits) {
        this.bits = bits;
    }

    /** @return whether the type is an integer */
    public boolean isInteger() {
        return bits > 0;
    }

    /** @return whether the type is an unsigned integer */
    public boolean isUnsigned() {
        return isInteger() && this != INT64;
    }

    /**
     * Returns whether an integer fits this type.
     *
     * @param v value (unsigned for UINT64)
     * @return whether it fits
     */
    public boolean fits(long v) {
        return switch (this) {
            case UINT8, UINT16, UINT32 -> v >= 0 && v < (1L << bits);
            case UINT64, INT64 -> true;
            default -> false;
        };
    }

    /** @return JSON name */
    public String jsonName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * Parses a JSON name.
     *
     * @param s name
     * @return type, or null if unknown
     */
    public static ParameterType ofJson(String s) {
        for (ParameterType t : values()) {
            if (t.jsonName().equals(s)) {
                return t;
            }
        }
        return null;
    }
}
