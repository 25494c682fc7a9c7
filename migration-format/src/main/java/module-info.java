/** outproc migration-format: device-state stream, device model registry, compatibility handshake. */
module dev.outproc.migration {
    requires org.bouncycastle.provider;
    requires com.fasterxml.jackson.core;
    requires info.picocli;

    exports dev.outproc.migration;
}
