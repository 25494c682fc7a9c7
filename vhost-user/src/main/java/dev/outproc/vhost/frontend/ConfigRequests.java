package dev.outproc.vhost.frontend;

import dev.outproc.vhost.connection.VhostUserMessage;
import dev.outproc.vhost.message.ConfigSpace;
import dev.outproc.vhost.message.FrontendRequest;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * The front-end's configuration-space requests, GET_CONFIG and SET_CONFIG (CONFIG). A back-end that
 * cannot answer GET_CONFIG replies with a size of 0 (vhost-user.rst), which becomes a
 * {@link FrontendException}.
 */
final class ConfigRequests {
    private final RequestChannel io;
    private final ConfigSpace.Encoder request = new ConfigSpace.Encoder();
    private final ConfigSpace.Decoder reply = new ConfigSpace.Decoder();

    ConfigRequests(RequestChannel io) {
        this.io = io;
    }

    byte[] getConfig(int offset, int size) throws IOException {
        int length = ConfigSpace.encodedLength(size);
        MemorySegment body = io.body(length);
        request.wrap(body, 0).access(offset, size, ConfigSpace.FLAGS_WRITABLE);
        body.asSlice(ConfigSpace.PAYLOAD_OFFSET, size).fill((byte) 0);
        try (VhostUserMessage m = io.call(FrontendRequest.GET_CONFIG, length, List.of())) {
            MemorySegment payload = m.payload();
            long got = reply.wrap(payload, 0).configSize();
            if (got != size || payload.byteSize() < length) {
                throw new FrontendException(0, "GET_CONFIG refused: asked " + size + " bytes at " + offset
                        + ", got " + got);
            }
            return reply.config().toArray(ValueLayout.JAVA_BYTE);
        }
    }

    void setConfig(int offset, byte[] data) throws IOException {
        int length = ConfigSpace.encodedLength(data.length);
        request.wrap(io.body(length), 0).access(offset, data.length, ConfigSpace.FLAGS_WRITABLE)
                .copyConfigFrom(MemorySegment.ofArray(data), 0, data.length);
        io.send(FrontendRequest.SET_CONFIG, length, List.of());
    }
}
