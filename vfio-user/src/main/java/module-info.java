/** outproc vfio-user: codecs, PCI device server framework and client of the vfio-user protocol. */
module dev.outproc.vfio {
    requires transitive dev.outproc.core;
    requires com.fasterxml.jackson.core;

    exports dev.outproc.vfio.message;
    exports dev.outproc.vfio.connection;
    exports dev.outproc.vfio.server;
    exports dev.outproc.vfio.client;
    exports dev.outproc.vfio.pci;
    exports dev.outproc.vfio.virtio;
    exports dev.outproc.vfio.program;
}
