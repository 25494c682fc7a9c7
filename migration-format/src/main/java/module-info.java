/**
 * outproc migration-format: a documented device-state stream, a registry of device models, a compatibility
 * handshake that refuses an incompatible migration before any state moves, and integrity through BouncyCastle.
 */
module dev.outproc.migration {
    requires org.bouncycastle.provider;
    requires com.fasterxml.jackson.core;

    exports dev.outproc.migration.stream;
    exports dev.outproc.migration.model;
    exports dev.outproc.migration.handshake;
    exports dev.outproc.migration.integrity;
}
