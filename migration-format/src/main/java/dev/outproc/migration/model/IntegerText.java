package dev.outproc.migration.model;

import java.util.regex.Pattern;

/** The one integer-text grammar of the registry, descriptors and offers (registry-format.md §3.4). */
final class IntegerText {
    private IntegerText() {}

    /** Decimal integer text: {@code 0}, or an optional minus and a non-zero digit first (no {@code +}, no leading zeros). */
    static final Pattern DECIMAL = Pattern.compile("0|-?[1-9][0-9]*");
    /** Hexadecimal integer text: lower-case {@code 0x}, then 1 to 16 digits of either case. */
    static final Pattern HEX = Pattern.compile("0x[0-9a-fA-F]{1,16}");

    /**
     * Parses integer text by the one grammar of registry-format.md §3.4, used for parameter values, registry integers
     * given as strings and PCI ids alike: decimal ({@code 0|-?[1-9][0-9]*}) or hex ({@code 0x} and 1–16 digits).
     * A minus sign is accepted for {@code int64} only; hex denotes a non-negative value.
     *
     * @param text the text
     * @param type an integer type
     * @return the value (an unsigned 64-bit value as its two's-complement bits)
     * @throws IllegalArgumentException if the text does not follow the grammar or does not fit 64 bits
     */
    static long parse(String text, ParameterType type) {
        try {
            if (HEX.matcher(text).matches()) {
                long v = Long.parseUnsignedLong(text.substring(2), 16);
                if (!type.isUnsigned() && v < 0) {
                    throw new NumberFormatException();
                }
                return v;
            }
            if (DECIMAL.matcher(text).matches() && (!text.startsWith("-") || !type.isUnsigned())) {
                return type.isUnsigned() ? Long.parseUnsignedLong(text) : Long.parseLong(text);
            }
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("value " + text + " does not fit " + type.jsonName());
        }
        throw new IllegalArgumentException("not a " + type.jsonName() + ": '" + text
                + "' (decimal without + or leading zeros, or 0x and 1 to 16 hex digits)");
    }
}
