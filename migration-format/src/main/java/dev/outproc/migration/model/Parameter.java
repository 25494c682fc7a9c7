package dev.outproc.migration.model;

import java.util.ArrayList;
import java.util.List;

/**
 * A typed parameter of a device model (in the sense of the 2020 qemu-devel proposals for device "models"): the
 * guest-visible configuration that source and destination must agree on.
 *
 * @param name parameter name, e.g. {@code blk_size}
 * @param type value type
 * @param defaultValue value when a descriptor omits the parameter, or null if it is required
 * @param allowed the only allowed values, or empty for any value of the type
 * @param min smallest allowed integer, or null
 * @param max largest allowed integer, or null
 * @param mustMatch whether source and destination must use the same value (false for host-side settings)
 * @param description what it means
 */
public record Parameter(String name, ParameterType type, ParameterValue defaultValue, List<ParameterValue> allowed,
        ParameterValue.Int min, ParameterValue.Int max, boolean mustMatch, String description) {

    /** Canonical constructor: copies the list. */
    public Parameter {
        allowed = List.copyOf(allowed);
    }

    /**
     * Checks a value against the type, allowed values and range.
     *
     * @param value the value
     * @return problems, empty if the value is allowed
     */
    public List<String> check(ParameterValue value) {
        List<String> problems = new ArrayList<>();
        if (!value.isOfType(type)) {
            problems.add("parameter " + name + " value " + value.text() + " is not a " + type.jsonName());
            return problems;
        }
        if (!allowed.isEmpty() && allowed.stream().noneMatch(a -> sameValue(a, value))) {
            problems.add("parameter " + name + " value " + value.text() + " is not one of "
                    + allowed.stream().map(ParameterValue::text).toList());
        }
        if (value instanceof ParameterValue.Int i) {
            if (min != null && i.compareTo(min) < 0) {
                problems.add("parameter " + name + " value " + i.text() + " is below the minimum " + min.text());
            }
            if (max != null && i.compareTo(max) > 0) {
                problems.add("parameter " + name + " value " + i.text() + " is above the maximum " + max.text());
            }
        }
        return problems;
    }

    /**
     * Compares two values by kind and content (integers by value, regardless of signedness marking).
     *
     * @param a first
     * @param b second
     * @return whether they are the same value
     */
    public static boolean sameValue(ParameterValue a, ParameterValue b) {
        if (a instanceof ParameterValue.Int x && b instanceof ParameterValue.Int y) {
            return x.value() == y.value();
        }
        return a.equals(b);
    }
}
