package dev.outproc.vhost.interop;

import static dev.outproc.core.memory.Layouts.LE_U32;
import static dev.outproc.core.memory.Layouts.LE_U64;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.outproc.core.transport.MessageChannel;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import org.junit.jupiter.api.Test;

/**
 * qemu-storage-daemon, the real vhost-user-blk back-end, is reachable through {@link StorageDaemon}
 * and speaks vhost-user: messages are encoded by hand here (12-byte header: request, flags, size;
 * vhost-user.rst "Message Specification") so that this test depends on nothing but the transport.
 */
class StorageDaemonIT {

    private static final int HEADER_SIZE = 12;
    private static final int GET_FEATURES = 1;
    private static final int GET_PROTOCOL_FEATURES = 15;
    private static final int FLAG_VERSION_1 = 0x1;
    private static final int FLAG_REPLY = 0x4;
    private static final long VIRTIO_F_VERSION_1 = 1L << 32;
    private static final long VHOST_USER_F_PROTOCOL_FEATURES = 1L << 30;

    @Test
    void shouldAnswerGetFeaturesWithVersion1() throws IOException {
        try (StorageDaemon qsd = StorageDaemon.builder(Peers.workDirectory("StorageDaemonIT-features"))
                .sizeBytes(64L << 20).start();
             MessageChannel channel = MessageChannel.connect(qsd.socket())) {
            channel.setReadTimeoutMillis(10_000);
            long features = requestU64(channel, GET_FEATURES);
            System.out.printf("qemu-storage-daemon GET_FEATURES = 0x%x%n", features);
            assertNotEquals(0, features, "no features offered");
            assertTrue((features & VIRTIO_F_VERSION_1) != 0, "VIRTIO_F_VERSION_1 missing: 0x" + Long.toHexString(features));
            assertTrue((features & VHOST_USER_F_PROTOCOL_FEATURES) != 0,
                    "VHOST_USER_F_PROTOCOL_FEATURES missing: 0x" + Long.toHexString(features));

            long protocolFeatures = requestU64(channel, GET_PROTOCOL_FEATURES);
            System.out.printf("qemu-storage-daemon GET_PROTOCOL_FEATURES = 0x%x%n", protocolFeatures);
            assertNotEquals(0, protocolFeatures, "no protocol features offered");
            assertEquals(64L << 20, Files.size(qsd.image()), "image size");
        }
    }

    @Test
    void shouldServeTheNextFrontEndAfterOneDisconnects() throws IOException {
        try (StorageDaemon qsd = StorageDaemon.builder(Peers.workDirectory("StorageDaemonIT-reconnect"))
                .sizeBytes(1L << 20).start()) {
            long first;
            try (MessageChannel channel = MessageChannel.connect(qsd.socket())) {
                channel.setReadTimeoutMillis(10_000);
                first = requestU64(channel, GET_FEATURES);
            }
            try (MessageChannel channel = MessageChannel.connect(qsd.socket())) {
                channel.setReadTimeoutMillis(10_000);
                assertEquals(first, requestU64(channel, GET_FEATURES), "features differ on the second connection");
            }
            assertTrue(qsd.isAlive(), () -> "daemon died after a front-end left: " + qsd.describe());
        }
    }

    /** Sends a request without payload and returns the u64 of its reply, checking the reply header. */
    private static long requestU64(MessageChannel channel, int request) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment header = arena.allocate(HEADER_SIZE);
            header.set(LE_U32, 0, request);
            header.set(LE_U32, 4, FLAG_VERSION_1);
            header.set(LE_U32, 8, 0);
            channel.write(header);

            MemorySegment reply = arena.allocate(HEADER_SIZE + 8);
            channel.readFully(reply.asSlice(0, HEADER_SIZE));
            int replyRequest = reply.get(LE_U32, 0);
            int flags = reply.get(LE_U32, 4);
            int size = reply.get(LE_U32, 8);
            assertEquals(request, replyRequest, "reply names another request");
            assertEquals(FLAG_VERSION_1, flags & 0x3, "reply version, flags=0x" + Integer.toHexString(flags));
            assertTrue((flags & FLAG_REPLY) != 0, "reply bit not set, flags=0x" + Integer.toHexString(flags));
            assertEquals(8, size, "u64 reply payload size");
            channel.readFully(reply.asSlice(HEADER_SIZE, 8));
            return reply.get(LE_U64, HEADER_SIZE);
        }
    }
}
