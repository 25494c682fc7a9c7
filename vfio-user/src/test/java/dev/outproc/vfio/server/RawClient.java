package dev.outproc.vfio.server;

import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.core.transport.ReceivedFds;
import dev.outproc.vfio.message.VfioUserHeader;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * A client that writes vfio-user messages byte by byte, for tests of what a careless or hostile client sends and of
 * the order in which a server's messages arrive.
 */
final class RawClient implements AutoCloseable {
    final MessageChannel channel;

    RawClient(MessageChannel channel) {
        this.channel = channel;
    }

    static RawClient connect(Path socket) throws IOException {
        return new RawClient(MessageChannel.connect(socket));
    }

    /** A message: header with the given fields, then the payload. */
    static MemorySegment message(int msgId, int command, int flags, byte[] payload) {
        MemorySegment m = Arena.ofAuto().allocate(VfioUserHeader.ENCODED_LENGTH + payload.length);
        new VfioUserHeader.Encoder().wrap(m, 0).msgId(msgId).command(command).size(m.byteSize()).flags(flags).error(0);
        MemorySegment.copy(payload, 0, m, ValueLayout.JAVA_BYTE, VfioUserHeader.ENCODED_LENGTH, payload.length);
        return m;
    }

    /** A little-endian payload builder. */
    static ByteBuffer payload(int bytes) {
        return ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** The VERSION payload 0.1 with a JSON capabilities object. */
    static byte[] version(String capabilitiesJson) {
        byte[] json = ("{\"capabilities\":" + capabilitiesJson + "}\0").getBytes(StandardCharsets.UTF_8);
        byte[] p = new byte[4 + json.length];
        p[2] = 1; // minor 1
        System.arraycopy(json, 0, p, 4, json.length);
        return p;
    }

    void send(int msgId, int command, byte[] payload) throws IOException {
        channel.write(message(msgId, command, 0, payload));
    }

    void send(int msgId, int command, byte[] payload, List<OwnedFd> fds) throws IOException {
        channel.write(message(msgId, command, 0, payload), fds);
    }

    /** A received message: its header and payload bytes, and any fds. */
    record Message(VfioUserHeader.Decoder header, byte[] payload, ReceivedFds fds) {
        ByteBuffer body() {
            return ByteBuffer.wrap(payload).order(ByteOrder.LITTLE_ENDIAN);
        }
    }

    Message receive() throws IOException {
        return receive(channel);
    }

    static Message receive(MessageChannel ch) throws IOException {
        MemorySegment h = Arena.ofAuto().allocate(VfioUserHeader.ENCODED_LENGTH);
        ReceivedFds fds = ch.readFully(h, 8);
        VfioUserHeader.Decoder d = new VfioUserHeader.Decoder().wrap(h, 0);
        byte[] payload = new byte[(int) (d.size() - VfioUserHeader.ENCODED_LENGTH)];
        if (payload.length > 0) {
            MemorySegment p = Arena.ofAuto().allocate(payload.length);
            ch.readFully(p);
            MemorySegment.copy(p, ValueLayout.JAVA_BYTE, 0, payload, 0, payload.length);
        }
        return new Message(d, payload, fds);
    }

    /** {@return the number of fds this process has open} */
    static long openFds() throws IOException {
        try (var s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count();
        }
    }

    @Override
    public void close() {
        channel.close();
    }
}
