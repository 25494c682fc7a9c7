package dev.outproc.migration.internal;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/** Little-endian access to byte arrays; every multi-byte integer of the format is little-endian. */
public final class Le {
    private static final VarHandle LE_U16 = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle LE_U32 = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle LE_U64 = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    private Le() {}

    /**
     * @param b array
     * @param i index
     * @return unsigned 16-bit value
     */
    public static int u16(byte[] b, int i) {
        return Short.toUnsignedInt((short) LE_U16.get(b, i));
    }

    /**
     * @param b array
     * @param i index
     * @return 32-bit value
     */
    public static int i32(byte[] b, int i) {
        return (int) LE_U32.get(b, i);
    }

    /**
     * @param b array
     * @param i index
     * @return 64-bit value
     */
    public static long i64(byte[] b, int i) {
        return (long) LE_U64.get(b, i);
    }

    /**
     * @param b array
     * @param i index
     * @param v value
     */
    public static void put16(byte[] b, int i, int v) {
        LE_U16.set(b, i, (short) v);
    }

    /**
     * @param b array
     * @param i index
     * @param v value
     */
    public static void put32(byte[] b, int i, int v) {
        LE_U32.set(b, i, v);
    }

    /**
     * @param b array
     * @param i index
     * @param v value
     */
    public static void put64(byte[] b, int i, long v) {
        LE_U64.set(b, i, v);
    }

    /**
     * Lower-case hex of a byte range.
     *
     * @param b bytes
     * @return hex string
     */
    public static String hex(byte[] b) {
        return java.util.HexFormat.of().formatHex(b);
    }
}
