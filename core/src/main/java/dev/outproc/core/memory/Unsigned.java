package dev.outproc.core.memory;

/** Checked arithmetic on unsigned 64-bit values, as peers send them. */
public final class Unsigned {
    private Unsigned() {
    }

    /**
     * Adds two unsigned 64-bit values.
     *
     * @param a first value
     * @param b second value
     * @return {@code a + b}
     * @throws ArithmeticException when the sum exceeds 2^64 - 1
     */
    public static long addExact(long a, long b) {
        long sum = a + b;
        if (Long.compareUnsigned(sum, a) < 0) {
            throw new ArithmeticException("unsigned overflow: 0x" + Long.toHexString(a) + " + 0x" + Long.toHexString(b));
        }
        return sum;
    }

    /**
     * {@return whether {@code [start, start + length)} wraps past 2^64} A zero length never wraps.
     *
     * @param start first address
     * @param length byte count
     */
    public static boolean wraps(long start, long length) {
        return length != 0 && Long.compareUnsigned(start + length - 1, start) < 0;
    }

    /**
     * {@return {@code a < b} as unsigned values}
     *
     * @param a first value
     * @param b second value
     */
    public static boolean lessThan(long a, long b) {
        return Long.compareUnsigned(a, b) < 0;
    }

    /**
     * {@return whether {@code [start, start+length)} lies in {@code [base, base+size)}}, unsigned, no overflow.
     *
     * @param start range start
     * @param length range length
     * @param base window start
     * @param size window size
     */
    public static boolean within(long start, long length, long base, long size) {
        if (Long.compareUnsigned(start, base) < 0) {
            return false;
        }
        long offset = start - base;
        return Long.compareUnsigned(offset, size) <= 0 && Long.compareUnsigned(length, size - offset) <= 0;
    }

    /**
     * {@return the value in hexadecimal with a {@code 0x} prefix}
     *
     * @param value the value
     */
    public static String hex(long value) {
        return "0x" + Long.toHexString(value);
    }
}
