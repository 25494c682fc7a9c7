package dev.outproc.vfio.virtio;

import dev.outproc.vfio.pci.PciCapability;

/**
 * One virtio-pci structure capability (VIRTIO 1.2 §4.1.4 "Virtio Structure PCI Capabilities"): a
 * vendor-specific PCI capability that tells the driver where a structure lives in which BAR.
 *
 * <pre>
 *  0               1               2               3
 *  0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7
 * +---------------+---------------+---------------+---------------+
 * | cap_vndr 0x09 |   cap_next    |    cap_len    |   cfg_type    |  0
 * +---------------+---------------+---------------+---------------+
 * |      bar      |      id       |          padding[2]           |  4
 * +---------------+---------------+---------------+---------------+
 * |                          offset (le32)                        |  8
 * +---------------------------------------------------------------+
 * |                          length (le32)                        | 12
 * +---------------------------------------------------------------+
 * |   NOTIFY_CFG: notify_off_multiplier (le32)                     | 16
 * |   PCI_CFG:    pci_cfg_data[4]                                   |
 * +---------------------------------------------------------------+
 * </pre>
 *
 * The PCI_CFG access capability (§4.1.4.9) is the only one the driver writes: its {@code bar},
 * {@code offset}, {@code length} and {@code pci_cfg_data} select and carry an access to a BAR through
 * config space (the {@link VirtioPciDevice} performs it).
 *
 * @param cfgType the structure ({@link #COMMON_CFG}, {@link #NOTIFY_CFG}, {@link #ISR_CFG},
 *        {@link #DEVICE_CFG}, {@link #PCI_CFG})
 * @param bar the BAR the structure is in (0 for PCI_CFG, which the driver sets)
 * @param offset the structure's offset in the BAR
 * @param structureLength its length in bytes
 * @param notifyOffMultiplier NOTIFY_CFG only: bytes between two queues' notification addresses
 */
public record VirtioPciCapability(int cfgType, int bar, long offset, long structureLength, long notifyOffMultiplier)
        implements PciCapability {
    /** cfg_type 1: common configuration. */
    public static final int COMMON_CFG = 1;
    /** cfg_type 2: notifications. */
    public static final int NOTIFY_CFG = 2;
    /** cfg_type 3: ISR status. */
    public static final int ISR_CFG = 3;
    /** cfg_type 4: device-specific configuration. */
    public static final int DEVICE_CFG = 4;
    /** cfg_type 5: PCI configuration access. */
    public static final int PCI_CFG = 5;
    /** Offset of {@code bar} in the capability. */
    public static final int BAR_OFFSET = 4;
    /** Offset of {@code offset} in the capability. */
    public static final int OFFSET_OFFSET = 8;
    /** Offset of {@code length} in the capability. */
    public static final int LENGTH_OFFSET = 12;
    /** Offset of {@code notify_off_multiplier} (NOTIFY_CFG) or {@code pci_cfg_data} (PCI_CFG). */
    public static final int EXTRA_OFFSET = 16;

    /** Checks the values. */
    public VirtioPciCapability {
        if (cfgType < COMMON_CFG || cfgType > PCI_CFG || bar < 0 || bar > 5 || offset < 0 || offset > 0xFFFF_FFFFL
                || structureLength < 0 || structureLength > 0xFFFF_FFFFL || notifyOffMultiplier < 0 || notifyOffMultiplier > 0xFFFF_FFFFL) {
            throw new IllegalArgumentException("invalid virtio-pci capability, cfg_type=" + cfgType + " bar=" + bar
                    + " offset=" + offset + " length=" + structureLength + " notify_off_multiplier=" + notifyOffMultiplier);
        }
    }

    /**
     * A structure in a BAR.
     *
     * @param cfgType COMMON_CFG, ISR_CFG or DEVICE_CFG
     * @param bar the BAR
     * @param offset its offset
     * @param length its length
     * @return the capability
     */
    public static VirtioPciCapability structure(int cfgType, int bar, long offset, long length) {
        return new VirtioPciCapability(cfgType, bar, offset, length, 0);
    }

    /** {@return the PCI configuration access capability} */
    public static VirtioPciCapability pciCfgAccess() {
        return new VirtioPciCapability(PCI_CFG, 0, 0, 0, 0);
    }

    @Override
    public int id() {
        return ID_VENDOR_SPECIFIC;
    }

    @Override
    public int length() {
        return cfgType == NOTIFY_CFG || cfgType == PCI_CFG ? 20 : 16;
    }

    @Override
    public void layout(byte[] b, byte[] w, byte[] c) {
        b[2] = (byte) length();
        b[3] = (byte) cfgType;
        b[BAR_OFFSET] = (byte) bar;
        putLe32(b, OFFSET_OFFSET, offset);
        putLe32(b, LENGTH_OFFSET, structureLength);
        if (cfgType == NOTIFY_CFG) {
            putLe32(b, EXTRA_OFFSET, notifyOffMultiplier);
        }
        if (cfgType == PCI_CFG) {
            w[BAR_OFFSET] = (byte) 0xFF;
            for (int i = OFFSET_OFFSET; i < 20; i++) {
                w[i] = (byte) 0xFF;
            }
        }
    }

    private static void putLe32(byte[] b, int at, long value) {
        for (int i = 0; i < 4; i++) {
            b[at + i] = (byte) (value >>> (8 * i));
        }
    }
}
