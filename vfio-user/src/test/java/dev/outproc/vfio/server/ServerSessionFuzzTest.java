package dev.outproc.vfio.server;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.vfio.message.VfioUserHeader;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * Fuzz target for the server's semantic layer: after a valid VERSION, arbitrary bytes arrive as whatever
 * messages they frame. Whatever they are, the session must end when the client goes (no hang, no escaped
 * exception), leave no DMA window or eventfd behind, and leave the device reset.
 */
class ServerSessionFuzzTest {
    private static final byte[] VERSION;

    static {
        byte[] json = "{\"capabilities\":{\"max_msg_fds\":8}}\0".getBytes(StandardCharsets.UTF_8);
        MemorySegment m = MemorySegment.ofArray(new byte[16 + 4 + json.length]);
        new VfioUserHeader.Encoder().wrap(m, 0).msgId(1).command(1).size(m.byteSize()).flags(0).error(0);
        MemorySegment.copy(json, 0, m, java.lang.foreign.ValueLayout.JAVA_BYTE, 20, json.length);
        VERSION = m.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
    }

    @FuzzTest(maxDuration = "30s")
    void serveArbitraryMessagesAfterVersion(byte[] data) throws Exception {
        SampleDevice device = new SampleDevice();
        VfioUserServer server = new VfioUserServer(device, ServerOptions.DEFAULTS.withMessageTimeoutMillis(200));
        MessageChannel.Pair pair = MessageChannel.pair();
        Thread serving = Thread.ofPlatform().daemon().start(() -> server.serve(pair.channel()));
        try (MessageChannel client = MessageChannel.adopt(pair.peerFd())) {
            Thread drain = Thread.ofPlatform().daemon().start(() -> {
                MemorySegment sink = Arena.ofAuto().allocate(4096);
                try {
                    while (true) {
                        client.readFully(sink.asSlice(0, 1));
                    }
                } catch (Exception ended) {
                    // The server closed or the test closed the client.
                }
            });
            client.write(MemorySegment.ofArray(VERSION));
            if (data.length > 0) {
                client.write(MemorySegment.ofArray(data));
            }
            Thread.sleep(5);
            client.shutdown();
            serving.join(10_000);
            assertFalse(serving.isAlive(), "the session ended when the client went");
            client.close();
            drain.join(5_000);
        }
        assertEquals(null, device.context, "detached");
        assertEquals(0L, device.bar0.toArray(java.lang.foreign.ValueLayout.JAVA_LONG)[16], "reset");
    }
}
