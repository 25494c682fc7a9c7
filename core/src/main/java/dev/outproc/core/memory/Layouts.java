package dev.outproc.core.memory;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The value layouts of outproc, declared once: byte order and alignment are in the name.
 *
 * <ul>
 * <li>{@code LE_*}: little-endian, what virtio defines for rings, descriptors, configuration space and
 *     request headers (VIRTIO 1.3 §1.4 "Structure Specifications"), and what the migration stream uses.</li>
 * <li>{@code NATIVE_*}: the host's byte order, what vhost-user messages use (its spec: "in the machine
 *     native byte order").</li>
 * <li>Without a suffix a layout is unaligned (byte alignment): the right choice for plain
 *     {@code get}/{@code set} of message payloads, configuration space and indirect tables, none of which
 *     is guaranteed aligned. {@code *_ALIGNED} layouts require natural alignment and are the ones to
 *     derive {@link java.lang.invoke.VarHandle}s from for acquire/release or atomic access (ring indices
 *     and flags, dirty-log words); on an unaligned address they throw.</li>
 * </ul>
 * Values are Java's signed primitives; read unsigned values with {@code Short.toUnsignedInt} or
 * {@code Integer.toUnsignedLong}.
 */
public final class Layouts {
    /** Unsigned byte (byte order does not apply). */
    public static final ValueLayout.OfByte U8 = ValueLayout.JAVA_BYTE;

    /** Little-endian 16-bit, unaligned. */
    public static final ValueLayout.OfShort LE_U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Little-endian 32-bit, unaligned. */
    public static final ValueLayout.OfInt LE_U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Little-endian 64-bit, unaligned. */
    public static final ValueLayout.OfLong LE_U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Little-endian 16-bit, 2-byte aligned (ring indices and flags, with acquire/release). */
    public static final ValueLayout.OfShort LE_U16_ALIGNED = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Little-endian 32-bit, 4-byte aligned. */
    public static final ValueLayout.OfInt LE_U32_ALIGNED = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Little-endian 64-bit, 8-byte aligned (dirty-log words, with atomic OR). */
    public static final ValueLayout.OfLong LE_U64_ALIGNED = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Native-order 16-bit, unaligned. */
    public static final ValueLayout.OfShort NATIVE_U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.nativeOrder());
    /** Native-order 32-bit, unaligned. */
    public static final ValueLayout.OfInt NATIVE_U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.nativeOrder());
    /** Native-order 64-bit, unaligned. */
    public static final ValueLayout.OfLong NATIVE_U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.nativeOrder());

    /** The largest value an unsigned 32-bit field holds. */
    public static final long U32_MAX = 0xFFFF_FFFFL;

    private Layouts() {
    }

    /**
     * Checks that a value fits an unsigned 32-bit field, as encoders do before writing it.
     *
     * @param field the field's name, for the message
     * @param value the value
     * @throws IllegalArgumentException naming the field and the value when it is negative or above {@link #U32_MAX}
     */
    public static void requireU32(String field, long value) {
        if (value < 0 || value > U32_MAX) {
            throw new IllegalArgumentException(field + " must fit in 32 unsigned bits, " + field + "=" + value);
        }
    }

    /**
     * Checks that a value fits an unsigned 16-bit field.
     *
     * @param field the field's name, for the message
     * @param value the value
     * @throws IllegalArgumentException naming the field and the value when it is outside 0..0xFFFF
     */
    public static void requireU16(String field, int value) {
        if (value < 0 || value > 0xFFFF) {
            throw new IllegalArgumentException(field + " must fit in 16 unsigned bits, " + field + "=" + value);
        }
    }

    /**
     * Checks that a value fits an unsigned 8-bit field.
     *
     * @param field the field's name, for the message
     * @param value the value
     * @throws IllegalArgumentException naming the field and the value when it is outside 0..0xFF
     */
    public static void requireU8(String field, int value) {
        if (value < 0 || value > 0xFF) {
            throw new IllegalArgumentException(field + " must fit in 8 unsigned bits, " + field + "=" + value);
        }
    }
}
