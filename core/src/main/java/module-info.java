/**
 * outproc core: Linux primitives through the FFM API, guest memory, dirty-page logging,
 * an epoll event loop, an fd-passing Unix-socket transport and virtqueues.
 *
 * <p>Native access must be granted to this module
 * ({@code --enable-native-access=dev.outproc.core}, or {@code ALL-UNNAMED} on the class path).
 */
module dev.outproc.core {
    exports dev.outproc.core.fd;
    exports dev.outproc.core.event;
    exports dev.outproc.core.memory;
    exports dev.outproc.core.transport;
    exports dev.outproc.core.virtqueue;
    exports dev.outproc.core.virtio;
    exports dev.outproc.core.virtio.blk;
}
