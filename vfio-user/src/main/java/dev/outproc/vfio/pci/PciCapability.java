package dev.outproc.vfio.pci;

/**
 * A capability in the PCI capability list (PCI Local Bus 3.0 §6.7): its id, its bytes after the id and
 * next-pointer, and which of those bits software may write or clear. {@link PciConfigSpace} links it into
 * the list. The library provides power management, MSI, MSI-X, PCI Express and vendor-specific ones
 * (virtio-pci's structures are vendor-specific capabilities); devices may define their own.
 */
public interface PciCapability {
    /** Capability id of power management. */
    int ID_POWER_MANAGEMENT = 0x01;
    /** Capability id of MSI. */
    int ID_MSI = 0x05;
    /** Capability id of vendor-specific information. */
    int ID_VENDOR_SPECIFIC = 0x09;
    /** Capability id of PCI Express. */
    int ID_PCI_EXPRESS = 0x10;
    /** Capability id of MSI-X. */
    int ID_MSIX = 0x11;

    /** {@return the capability id} */
    int id();

    /** {@return the whole length in bytes, id and next pointer included} */
    int length();

    /**
     * Fills the initial bytes and the masks; index 0 is the id byte, 1 the next pointer (both set by the
     * config space).
     *
     * @param bytes the initial contents
     * @param writable bits software may write
     * @param writeOneToClear bits software clears by writing 1
     */
    void layout(byte[] bytes, byte[] writable, byte[] writeOneToClear);

    /** Power management, version 3, D0 and D3hot; PowerState and PME_En writable, PME_Status write-1-to-clear. */
    record PowerManagement() implements PciCapability {
        @Override
        public int id() {
            return ID_POWER_MANAGEMENT;
        }

        @Override
        public int length() {
            return 8;
        }

        @Override
        public void layout(byte[] b, byte[] w, byte[] c) {
            b[2] = 0x03; // PMC: version 3
            w[4] = 0x03; // PMCSR PowerState
            w[5] = 0x01; // PMCSR PME_En
            c[5] = (byte) 0x80; // PMCSR PME_Status
        }
    }

    /**
     * MSI with 64-bit addresses.
     *
     * @param vectors a power of two from 1 to 32
     */
    record Msi(int vectors) implements PciCapability {
        /** Checks the vector count. */
        public Msi {
            if (vectors < 1 || vectors > 32 || Integer.bitCount(vectors) != 1) {
                throw new IllegalArgumentException("MSI vectors must be a power of two in [1, 32], vectors=" + vectors);
            }
        }

        @Override
        public int id() {
            return ID_MSI;
        }

        @Override
        public int length() {
            return 14;
        }

        @Override
        public void layout(byte[] b, byte[] w, byte[] c) {
            b[2] = (byte) (0x80 | (Integer.numberOfTrailingZeros(vectors) << 1)); // 64-bit, Multiple Message Capable
            w[2] = (byte) 0x71; // Enable, Multiple Message Enable
            for (int i = 4; i < 14; i++) {
                w[i] = (byte) 0xFF;
            }
            w[4] = (byte) 0xFC; // address is dword aligned
        }
    }

    /**
     * MSI-X: a table of {@code tableSize} 16-byte entries and a pending-bit array, each in a BAR.
     *
     * @param tableSize the number of vectors, 1 to 2048
     * @param tableBar the BAR of the table
     * @param tableOffset the table's offset in it (8-byte aligned)
     * @param pbaBar the BAR of the pending-bit array
     * @param pbaOffset its offset (8-byte aligned)
     */
    record MsiX(int tableSize, int tableBar, long tableOffset, int pbaBar, long pbaOffset) implements PciCapability {
        /** Checks the values. */
        public MsiX {
            if (tableSize < 1 || tableSize > 2048 || tableBar < 0 || tableBar > 5 || pbaBar < 0 || pbaBar > 5
                    || (tableOffset & 7) != 0 || (pbaOffset & 7) != 0) {
                throw new IllegalArgumentException("invalid MSI-X capability, tableSize=" + tableSize + " tableBar=" + tableBar
                        + " tableOffset=" + tableOffset + " pbaBar=" + pbaBar + " pbaOffset=" + pbaOffset);
            }
        }

        @Override
        public int id() {
            return ID_MSIX;
        }

        @Override
        public int length() {
            return 12;
        }

        @Override
        public void layout(byte[] b, byte[] w, byte[] c) {
            int control = tableSize - 1;
            b[2] = (byte) control;
            b[3] = (byte) (control >> 8);
            w[3] = (byte) 0xC0; // MSI-X Enable, Function Mask
            int table = (int) tableOffset | tableBar;
            int pba = (int) pbaOffset | pbaBar;
            for (int i = 0; i < 4; i++) {
                b[4 + i] = (byte) (table >> (8 * i));
                b[8 + i] = (byte) (pba >> (8 * i));
            }
        }

        /** {@return the table's size in bytes} */
        public long tableBytes() {
            return 16L * tableSize;
        }

        /** {@return the pending-bit array's size in bytes} */
        public long pbaBytes() {
            return 8L * ((tableSize + 63) / 64);
        }
    }

    /**
     * PCI Express capability, version 2, for an endpoint of the given type; Device Control writable.
     *
     * @param deviceType the device/port type (0 endpoint, 9 root complex integrated endpoint)
     */
    record PciExpress(int deviceType) implements PciCapability {
        @Override
        public int id() {
            return ID_PCI_EXPRESS;
        }

        @Override
        public int length() {
            return 0x3C;
        }

        @Override
        public void layout(byte[] b, byte[] w, byte[] c) {
            b[2] = (byte) (0x02 | (deviceType << 4)); // version 2, device/port type
            b[4] = 0x01; // Device Capabilities: Max_Payload_Size 256 bytes
            w[8] = (byte) 0xFF; // Device Control
            w[9] = (byte) 0x7F;
            c[10] = 0x0F; // Device Status error bits
        }
    }

    /**
     * Vendor-specific information (virtio-pci puts its structure descriptions here): read-only bytes after
     * the length byte.
     *
     * @param body the bytes after id, next pointer and length
     */
    record VendorSpecific(byte[] body) implements PciCapability {
        /** Checks the length. */
        public VendorSpecific {
            if (body.length > 252) {
                throw new IllegalArgumentException("vendor-specific capability body of " + body.length + " bytes exceeds 252");
            }
            body = body.clone();
        }

        @Override
        public int id() {
            return ID_VENDOR_SPECIFIC;
        }

        @Override
        public int length() {
            return 3 + body.length;
        }

        @Override
        public void layout(byte[] b, byte[] w, byte[] c) {
            b[2] = (byte) length();
            System.arraycopy(body, 0, b, 3, body.length);
        }
    }
}
