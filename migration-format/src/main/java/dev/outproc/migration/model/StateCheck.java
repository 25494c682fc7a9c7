package dev.outproc.migration.model;

/**
 * A declarative load-time check of a format version (registry-format.md §3.5), for example that {@code num_queues}
 * equals the number of queue records: {@code left op right}, both operands evaluated on the decoded state with
 * defaults applied; a reader refuses the state when it does not hold.
 *
 * @param id stable name of the check, reported on failure
 * @param left left operand
 * @param op one of {@code eq ne lt le gt ge}
 * @param right right operand
 * @param description why the check exists
 */
public record StateCheck(String id, Operand left, String op, Operand right, String description) {
    /**
     * An operand: the integer value of a field, the element count of an array field, or a constant.
     *
     * @param kind {@code field}, {@code count} or {@code value}
     * @param path for {@code field} and {@code count}: {@code section-name.field-name}; for {@code value}: the
     *        integer as canonical decimal text
     */
    public record Operand(String kind, String path) {}

    /**
     * Compares two integers with this check's operator.
     *
     * @param a left value
     * @param b right value
     * @return whether the check holds
     */
    public boolean holds(long a, long b) {
        int c = Long.compare(a, b);
        return switch (op) {
            case "eq" -> c == 0;
            case "ne" -> c != 0;
            case "lt" -> c < 0;
            case "le" -> c <= 0;
            case "gt" -> c > 0;
            case "ge" -> c >= 0;
            default -> throw new IllegalStateException("unknown check operator " + op);
        };
    }
}
