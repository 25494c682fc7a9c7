package dev.outproc.vhost.message;

import com.code_intelligence.jazzer.junit.FuzzTest;

import java.lang.foreign.MemorySegment;

/**
 * Fuzz target for the syntax layer: arbitrary bytes as a message on any of the four streams, with an
 * arbitrary fd count. The only acceptable failure is {@link VhostUserProtocolException}; a message that
 * passes must then decode with the payload decoders without any exception (no out-of-bounds access,
 * whatever the counts inside say).
 *
 * <p>Input layout: byte 0 selects the stream, byte 1 the fd count, the rest is the message.
 */
class MessageDecoderFuzzTest {
    @FuzzTest(maxDuration = "30s")
    void decodeArbitraryMessages(byte[] data) {
        if (data.length < 2) {
            return;
        }
        MessageStream stream = MessageStream.values()[(data[0] & 0xFF) % MessageStream.values().length];
        int fds = data[1] & 0x0F;
        MemorySegment message = MemorySegment.ofArray(data).asSlice(2);
        VhostUserRequest request;
        try {
            request = MessageValidator.check(stream, message, fds, MessageValidator.DEFAULT_MAX_PAYLOAD_BYTES);
        } catch (VhostUserProtocolException expected) {
            return;
        }
        long size = message.byteSize() - VhostUserHeader.ENCODED_LENGTH;
        PayloadType type = PayloadFields.typeOf(request, stream.replies(), size);
        PayloadFields.decode(type, message, VhostUserHeader.ENCODED_LENGTH, size);
        new VhostUserHeader.Decoder().wrap(message, 0).needReply();
    }
}
