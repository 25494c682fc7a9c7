/**
 * outproc vfio-user: codecs, PCI device server framework and client of the vfio-user protocol.
 * Planned; the module has no API yet.
 */
module dev.outproc.vfio {
    requires transitive dev.outproc.core;
}
