package dev.outproc.vfio.pci;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * A type-0 PCI configuration header of 256 bytes with its capability list, emulated the way hardware
 * behaves: every byte has a write mask (read-only bits keep their value) and a write-1-to-clear mask
 * (status bits). BARs are sized the way a guest probes them: writing all ones reads back the size mask
 * with the type bits, because a BAR's low address bits are read-only zeros.
 *
 * <p>Layout facts (PCI Local Bus 3.0 §6.1, §6.2.5): command at 0x04 (I/O, Memory, Bus Master, Parity,
 * SERR, INTx Disable writable), status at 0x06 (Capabilities List read-only, error bits write-1-to-clear),
 * BARs at 0x10-0x24, subsystem ids at 0x2C, capability pointer at 0x34, interrupt line and pin at 0x3C.
 * Capabilities start at 0x40, each 4-byte aligned.
 */
public final class PciConfigSpace {
    /** Size of the configuration space in bytes. */
    public static final int SIZE = 256;
    /** Offset of the command register. */
    public static final int COMMAND = 0x04;
    /** Offset of the status register. */
    public static final int STATUS = 0x06;
    /** Offset of BAR0. */
    public static final int BAR0 = 0x10;
    /** Offset of the capability pointer. */
    public static final int CAPABILITIES_POINTER = 0x34;
    /** Offset of the interrupt line. */
    public static final int INTERRUPT_LINE = 0x3C;
    /** Command bit 10: INTx disabled. */
    public static final int COMMAND_INTX_DISABLE = 1 << 10;
    /** Command bit 1: memory space enabled. */
    public static final int COMMAND_MEMORY = 1 << 1;
    /** Command bit 2: bus master (DMA) enabled. */
    public static final int COMMAND_BUS_MASTER = 1 << 2;

    /** Kind of a BAR. */
    public enum BarType {
        /** 32-bit memory BAR. */
        MEMORY32,
        /** 64-bit memory BAR (takes this and the next BAR slot). */
        MEMORY64,
        /** I/O BAR. */
        IO
    }

    private final byte[] bytes = new byte[SIZE];
    private final byte[] writable = new byte[SIZE];
    private final byte[] writeOneToClear = new byte[SIZE];
    private final byte[] initial = new byte[SIZE];
    private final long[] barSizes = new long[6];
    private final List<Integer> capabilityOffsets = new ArrayList<>();
    private int nextCapability = 0x40;
    private int lastCapability = -1;

    /**
     * Creates a header with the given identity.
     *
     * @param vendorId the vendor id
     * @param deviceId the device id
     * @param subsystemVendorId the subsystem vendor id
     * @param subsystemId the subsystem id
     * @param classCode the 24-bit class code (base class, subclass, programming interface)
     * @param revision the revision id
     */
    public PciConfigSpace(int vendorId, int deviceId, int subsystemVendorId, int subsystemId, int classCode, int revision) {
        put16(0x00, vendorId);
        put16(0x02, deviceId);
        bytes[0x08] = (byte) revision;
        put16(0x09, classCode & 0xFFFF);
        bytes[0x0B] = (byte) (classCode >> 16);
        put16(0x2C, subsystemVendorId);
        put16(0x2E, subsystemId);
        writable[COMMAND] = (byte) 0x47; // I/O, Memory, Bus Master, Parity Error Response
        writable[COMMAND + 1] = 0x05; // SERR# Enable, INTx Disable
        writeOneToClear[STATUS + 1] = (byte) 0xF9; // parity, target/master abort, SERR, detected parity
        writable[0x0C] = (byte) 0xFF; // cache line size
        writable[0x0D] = (byte) 0xFF; // latency timer
        writable[INTERRUPT_LINE] = (byte) 0xFF;
        snapshot();
    }

    private void put16(int at, int value) {
        bytes[at] = (byte) value;
        bytes[at + 1] = (byte) (value >> 8);
    }

    private void snapshot() {
        System.arraycopy(bytes, 0, initial, 0, SIZE);
    }

    /**
     * Declares a BAR.
     *
     * @param index the BAR slot, 0-5 (a 64-bit BAR takes {@code index + 1} too)
     * @param sizeBytes a power of two, at least 16 for memory and 4 for I/O
     * @param type the kind
     * @param prefetchable whether a memory BAR is prefetchable
     * @return this
     */
    public PciConfigSpace bar(int index, long sizeBytes, BarType type, boolean prefetchable) {
        long min = type == BarType.IO ? 4 : 16;
        if (index < 0 || index > 5 || (type == BarType.MEMORY64 && index == 5) || sizeBytes < min || Long.bitCount(sizeBytes) != 1
                || (type != BarType.MEMORY64 && sizeBytes > (1L << 31))) {
            throw new IllegalArgumentException("invalid BAR" + index + " size=0x" + Long.toHexString(sizeBytes) + " type=" + type);
        }
        int at = BAR0 + 4 * index;
        int flags = switch (type) {
            case IO -> 0x1;
            case MEMORY32 -> prefetchable ? 0x8 : 0x0;
            case MEMORY64 -> 0x4 | (prefetchable ? 0x8 : 0x0);
        };
        long mask = ~(sizeBytes - 1) & (type == BarType.IO ? ~0x3L : ~0xFL);
        bytes[at] = (byte) flags;
        for (int i = 0; i < 4; i++) {
            writable[at + i] = (byte) (mask >> (8 * i));
        }
        if (type == BarType.MEMORY64) {
            for (int i = 0; i < 4; i++) {
                writable[at + 4 + i] = (byte) (mask >> (32 + 8 * i));
            }
        }
        barSizes[index] = sizeBytes;
        snapshot();
        return this;
    }

    /**
     * Sets the interrupt pin (1 = INTA# .. 4 = INTD#, 0 = none).
     *
     * @param pin the pin
     * @return this
     */
    public PciConfigSpace interruptPin(int pin) {
        bytes[0x3D] = (byte) pin;
        snapshot();
        return this;
    }

    /**
     * Appends a capability to the list.
     *
     * @param capability the capability
     * @return its offset in config space
     */
    public int addCapability(PciCapability capability) {
        int at = nextCapability;
        int length = capability.length();
        if (at + length > SIZE) {
            throw new IllegalArgumentException("capability " + capability.id() + " of " + length + " bytes does not fit at 0x"
                    + Integer.toHexString(at));
        }
        byte[] b = new byte[length];
        byte[] w = new byte[length];
        byte[] c = new byte[length];
        capability.layout(b, w, c);
        b[0] = (byte) capability.id();
        b[1] = 0;
        w[0] = 0;
        w[1] = 0;
        System.arraycopy(b, 0, bytes, at, length);
        System.arraycopy(w, 0, writable, at, length);
        System.arraycopy(c, 0, writeOneToClear, at, length);
        if (lastCapability < 0) {
            bytes[CAPABILITIES_POINTER] = (byte) at;
        } else {
            bytes[lastCapability + 1] = (byte) at;
        }
        bytes[STATUS] |= 0x10; // Capabilities List
        lastCapability = at;
        capabilityOffsets.add(at);
        nextCapability = (at + length + 3) & ~3;
        snapshot();
        return at;
    }

    /** {@return the offsets of the capabilities, in list order} */
    public List<Integer> capabilityOffsets() {
        return List.copyOf(capabilityOffsets);
    }

    /**
     * {@return the size of a BAR, 0 when absent}
     *
     * @param index the BAR slot
     */
    public long barSize(int index) {
        return barSizes[index];
    }

    /**
     * Reads bytes.
     *
     * @param offset the offset
     * @param destination where they go
     */
    public synchronized void read(long offset, MemorySegment destination) {
        MemorySegment.copy(bytes, (int) offset, destination, ValueLayout.JAVA_BYTE, 0, (int) destination.byteSize());
    }

    /**
     * Writes bytes through the masks: writable bits take the new value, write-1-to-clear bits clear where
     * a 1 is written, every other bit keeps its value.
     *
     * @param offset the offset
     * @param source the bytes
     */
    public synchronized void write(long offset, MemorySegment source) {
        for (int i = 0; i < source.byteSize(); i++) {
            int at = (int) offset + i;
            byte v = source.get(ValueLayout.JAVA_BYTE, i);
            byte kept = (byte) (bytes[at] & ~writable[at]);
            byte written = (byte) (v & writable[at]);
            byte cleared = (byte) (v & writeOneToClear[at]);
            bytes[at] = (byte) ((kept | written) & ~cleared);
        }
    }

    /**
     * {@return the 16-bit value at an offset}
     *
     * @param offset the offset
     */
    public synchronized int read16(int offset) {
        return (bytes[offset] & 0xFF) | (bytes[offset + 1] & 0xFF) << 8;
    }

    /**
     * {@return the 32-bit value at an offset}
     *
     * @param offset the offset
     */
    public synchronized int read32(int offset) {
        return read16(offset) | read16(offset + 2) << 16;
    }

    /**
     * Sets bits as the device (not software) would, bypassing the masks (status bits, for example).
     *
     * @param offset the offset
     * @param value the byte
     */
    public synchronized void setByDevice(int offset, int value) {
        bytes[offset] = (byte) value;
    }

    /** Returns every byte to its power-on value. */
    public synchronized void reset() {
        System.arraycopy(initial, 0, bytes, 0, SIZE);
    }
}
