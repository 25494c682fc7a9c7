package dev.outproc.migration.model;

import java.util.Map;

/**
 * A predicate on one parameter, compared with a constant or with another parameter.
 *
 * @param param the parameter
 * @param op the comparison
 * @param value the constant, or null when {@code otherParam} is set
 * @param otherParam the parameter to compare with, or null
 */
public record Condition(String param, Op op, ParameterValue value, String otherParam) {

    /** Comparison operators; their JSON names are lower-case. */
    public enum Op {
        /** Equal. */
        EQ,
        /** Not equal. */
        NE,
        /** Less than or equal (integers). */
        LE,
        /** Greater than or equal (integers). */
        GE,
        /** All bits of the constant are set (integers). */
        BITS_SET,
        /** No bit of the constant is set (integers). */
        BITS_CLEAR
    }

    /**
     * Evaluates the condition.
     *
     * @param values parameter values (defaults applied)
     * @return whether it holds; false if a parameter is missing or of the wrong kind
     */
    public boolean holds(Map<String, ParameterValue> values) {
        ParameterValue left = values.get(param);
        ParameterValue right = otherParam != null ? values.get(otherParam) : value;
        if (left == null || right == null) {
            return false;
        }
        return switch (op) {
            case EQ -> Parameter.sameValue(left, right);
            case NE -> !Parameter.sameValue(left, right);
            case LE, GE, BITS_SET, BITS_CLEAR -> {
                if (!(left instanceof ParameterValue.Int l) || !(right instanceof ParameterValue.Int r)) {
                    yield false;
                }
                yield switch (op) {
                    case LE -> l.compareTo(r) <= 0;
                    case GE -> l.compareTo(r) >= 0;
                    case BITS_SET -> (l.value() & r.value()) == r.value();
                    default -> (l.value() & r.value()) == 0;
                };
            }
        };
    }

    @Override
    public String toString() {
        return param + " " + op.name().toLowerCase(java.util.Locale.ROOT) + " " + (otherParam != null ? otherParam : value.text());
    }
}
