package dev.outproc.vfio.message;

import com.code_intelligence.jazzer.junit.FuzzTest;

import java.lang.foreign.MemorySegment;

/**
 * Fuzz target for the syntax layer and the decoders behind it: arbitrary bytes as a command or a reply
 * with an arbitrary fd count. The only acceptable failure is {@link VfioUserProtocolException}; a message
 * that passes must then decode with every decoder its command uses (capabilities JSON, region capability
 * chains, data offsets) without any other exception, whatever the counts inside say.
 *
 * <p>Input layout: byte 0 selects command (even) or reply (odd) and the command a reply answers, byte 1
 * the fd count, the rest is the message.
 */
class MessageDecoderFuzzTest {
    @FuzzTest(maxDuration = "30s")
    void decodeArbitraryMessages(byte[] data) {
        if (data.length < 2 + VfioUserHeader.ENCODED_LENGTH) {
            return;
        }
        int fds = data[1] & 0x0F;
        MemorySegment m = MemorySegment.ofArray(data).asSlice(2);
        VfioUserHeader.Decoder h = new VfioUserHeader.Decoder().wrap(m, 0);
        try {
            MessageValidator.checkHeader(m, 0, m.byteSize());
            if (h.size() != m.byteSize()) {
                return; // The connection reads exactly size bytes; a shorter or longer buffer is not a message.
            }
            long payload = h.size() - VfioUserHeader.ENCODED_LENGTH;
            if ((data[0] & 1) == 0) {
                VfioUserCommand c = MessageValidator.checkCommand(m, 0, fds,
                        VfioUserCommand.of(h.command()) == null ? VfioUserCommand.Direction.CLIENT_TO_SERVER
                                : VfioUserCommand.of(h.command()).direction(), 1 << 20, 16);
                if (c == VfioUserCommand.VERSION) {
                    Version.Decoder v = new Version.Decoder().wrap(m, VfioUserHeader.ENCODED_LENGTH);
                    Capabilities.parse(m, v.dataOffset(), payload - Version.ENCODED_LENGTH);
                }
            } else {
                VfioUserCommand answered = VfioUserCommand.values()[((data[0] & 0xFF) >> 1) % VfioUserCommand.values().length];
                MessageValidator.checkReply(m, 0, answered);
                if (!h.isError() && answered == VfioUserCommand.DEVICE_GET_REGION_INFO) {
                    RegionCapabilities.read(m, VfioUserHeader.ENCODED_LENGTH, payload);
                }
                if (!h.isError() && answered == VfioUserCommand.VERSION) {
                    Version.Decoder v = new Version.Decoder().wrap(m, VfioUserHeader.ENCODED_LENGTH);
                    Capabilities.parse(m, v.dataOffset(), payload - Version.ENCODED_LENGTH);
                }
            }
        } catch (VfioUserProtocolException expected) {
            // The one failure the syntax layer may report.
        }
    }
}
