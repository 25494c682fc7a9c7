/** outproc vhost-user: codecs, back-end framework and front-end of the vhost-user protocol. */
module dev.outproc.vhost {
    requires transitive dev.outproc.core;

    exports dev.outproc.vhost.backend;
    exports dev.outproc.vhost.frontend;
    exports dev.outproc.vhost.message;
    exports dev.outproc.vhost.connection;
    exports dev.outproc.vhost.program;
    exports dev.outproc.vhost.testkit;
}
