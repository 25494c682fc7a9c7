package dev.outproc.migration.model;

/** A parameter value: boolean, integer (unsigned types are stored as unsigned 64-bit) or string. */
public sealed interface ParameterValue {
    /**
     * A boolean value.
     *
     * @param value the value
     */
    record Bool(boolean value) implements ParameterValue {
        @Override
        public String text() {
            return Boolean.toString(value);
        }
    }

    /**
     * An integer value.
     *
     * @param value the value; for unsigned types, the unsigned interpretation applies
     * @param unsigned whether the value is unsigned
     */
    record Int(long value, boolean unsigned) implements ParameterValue {
        @Override
        public String text() {
            return unsigned ? Long.toUnsignedString(value) : Long.toString(value);
        }

        /**
         * Compares numerically, unsigned when both are unsigned.
         *
         * @param o other value
         * @return negative, zero or positive
         */
        public int compareTo(Int o) {
            return unsigned && o.unsigned ? Long.compareUnsigned(value, o.value) : Long.compare(value, o.value);
        }
    }

    /**
     * A string value.
     *
     * @param value the value
     */
    record Str(String value) implements ParameterValue {
        @Override
        public String text() {
            return value;
        }
    }

    /** @return the value as text (decimal for integers) */
    String text();

    /**
     * Creates an unsigned integer value.
     *
     * @param v value
     * @return the value
     */
    static ParameterValue ofUnsigned(long v) {
        return new Int(v, true);
    }

    /**
     * Parses a value of a type from text: {@code true}/{@code false}, decimal or {@code 0x} hex integers, strings.
     *
     * @param type the type
     * @param text the text
     * @return the value
     * @throws IllegalArgumentException if the text is not a value of the type
     */
    static ParameterValue parse(ParameterType type, String text) {
        switch (type) {
            case BOOL -> {
                if (text.equals("true") || text.equals("false")) {
                    return new Bool(Boolean.parseBoolean(text));
                }
                throw new IllegalArgumentException("not a bool: '" + text + "'");
            }
            case STRING -> {
                return new Str(text);
            }
            default -> {
                long v = IntegerText.parse(text, type);
                if (!type.fits(v)) {
                    throw new IllegalArgumentException("value " + text + " does not fit " + type.jsonName());
                }
                return new Int(v, type.isUnsigned());
            }
        }
    }

    /**
     * Returns whether this value has the given type's kind.
     *
     * @param type the type
     * @return whether the value can be a value of the type
     */
    default boolean isOfType(ParameterType type) {
        return switch (this) {
            case Bool b -> type == ParameterType.BOOL;
            case Str s -> type == ParameterType.STRING;
            case Int i -> type.isInteger() && (i.unsigned() == type.isUnsigned() || (!i.unsigned() && i.value() >= 0))
                    && (type == ParameterType.UINT64 || type == ParameterType.INT64 || type.fits(i.value()));
        };
    }
}
