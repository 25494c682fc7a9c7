package dev.outproc.migration.model;

/**
 * A PCI identity under which a model appears (PCI Local Bus spec, configuration header). Unset optional ids are -1.
 *
 * @param vendor vendor id
 * @param device device id
 * @param subsystemVendor subsystem vendor id or -1
 * @param subsystemDevice subsystem id or -1
 * @param revision revision id or -1
 */
public record PciAlias(int vendor, int device, int subsystemVendor, int subsystemDevice, int revision) {
    /**
     * Returns whether a PCI identity matches this alias (unset fields match anything).
     *
     * @param v vendor
     * @param d device
     * @param sv subsystem vendor or -1
     * @param sd subsystem device or -1
     * @param rev revision or -1
     * @return whether it matches
     */
    public boolean matches(int v, int d, int sv, int sd, int rev) {
        return vendor == v && device == d && (subsystemVendor < 0 || subsystemVendor == sv)
                && (subsystemDevice < 0 || subsystemDevice == sd) && (revision < 0 || revision == rev);
    }

    @Override
    public String toString() {
        return String.format("%04x:%04x", vendor, device)
                + (subsystemVendor >= 0 ? String.format(" subsys %04x:%04x", subsystemVendor, subsystemDevice) : "")
                + (revision >= 0 ? String.format(" rev %02x", revision) : "");
    }
}
