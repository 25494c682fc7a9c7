/** outproc vfio-user: codecs, PCI device server framework and client of the vfio-user protocol. */
module dev.outproc.vfio {
    requires transitive dev.outproc.core;
    requires transitive dev.outproc.migration;

    exports dev.outproc.vfio;
}
