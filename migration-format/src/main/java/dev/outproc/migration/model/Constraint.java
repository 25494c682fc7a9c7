package dev.outproc.migration.model;

import java.util.Map;

/**
 * A constraint across parameters: whenever {@code when} holds (or always, if it is null), {@code require} must hold.
 * Example: {@code read_only eq true} requires {@code features bits_set 0x20} (VIRTIO_BLK_F_RO, virtio spec 5.2.3).
 *
 * @param id stable name of the constraint, used in refusal reasons
 * @param when condition, or null for always
 * @param require what must hold
 * @param description why
 */
public record Constraint(String id, Condition when, Condition require, String description) {
    /**
     * Evaluates the constraint.
     *
     * @param values parameter values with defaults applied
     * @return whether it is satisfied
     */
    public boolean satisfied(Map<String, ParameterValue> values) {
        return (when != null && !when.holds(values)) || require.holds(values);
    }

    @Override
    public String toString() {
        return (when == null ? "" : "if " + when + " then ") + require;
    }
}
