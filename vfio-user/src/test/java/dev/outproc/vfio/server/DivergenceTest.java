package dev.outproc.vfio.server;

import dev.outproc.core.transport.MessageChannel;
import dev.outproc.core.transport.ReceivedFds;
import dev.outproc.core.transport.UnixListener;
import dev.outproc.vfio.client.VfioUserClient;
import dev.outproc.vfio.message.Capabilities;
import dev.outproc.vfio.message.DmaAccess;
import dev.outproc.vfio.message.DmaAccessLayout;
import dev.outproc.vfio.message.DmaMap;
import dev.outproc.vfio.message.DmaUnmap;
import dev.outproc.vfio.message.MessageValidator;
import dev.outproc.vfio.message.MigData;
import dev.outproc.vfio.message.RegionInfo;
import dev.outproc.vfio.message.RegionWriteMulti;
import dev.outproc.vfio.message.RegionWriteMultiEntry;
import dev.outproc.vfio.message.VfioUserCommand;
import dev.outproc.vfio.message.VfioUserHeader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One test per row of the divergence table in docs/vfio-user-guide.md: where vfio-user.rst, QEMU 10.x's
 * client and libvfio-user disagree, we decode what each peer sends and write what the spec says.
 */
class DivergenceTest {
    @TempDir
    Path dir;

    private interface Body {
        void run(MessageChannel raw, SampleDevice device, VfioUserServer server) throws Exception;
    }

    private void withServer(ServerOptions options, Body body) throws Exception {
        SampleDevice device = new SampleDevice();
        Path socket = dir.resolve("d.sock");
        try (UnixListener listener = UnixListener.bind(socket)) {
            VfioUserServer server = new VfioUserServer(device, options);
            Thread t = Thread.ofPlatform().daemon().start(() -> server.serve(listener));
            try (MessageChannel raw = MessageChannel.connect(socket)) {
                send(raw, 1, VfioUserCommand.VERSION.code(), 0, versionPayload());
                receive(raw);
                body.run(raw, device, server);
            } finally {
                listener.close();
                server.disconnectClient();
                t.join(5000);
            }
        }
    }

    private static byte[] versionPayload() {
        byte[] json = "{\"capabilities\":{\"max_msg_fds\":16}}\0".getBytes(StandardCharsets.UTF_8);
        byte[] p = new byte[4 + json.length];
        System.arraycopy(json, 0, p, 4, json.length);
        return p;
    }

    private static void send(MessageChannel ch, int id, int command, int flags, byte[] payload) throws Exception {
        MemorySegment m = Arena.ofAuto().allocate(16 + payload.length);
        new VfioUserHeader.Encoder().wrap(m, 0).msgId(id).command(command).size(m.byteSize()).flags(flags).error(0);
        MemorySegment.copy(payload, 0, m, ValueLayout.JAVA_BYTE, 16, payload.length);
        ch.write(m);
    }

    private record Msg(MemorySegment bytes, int fds) {
        VfioUserHeader.Decoder header() {
            return new VfioUserHeader.Decoder().wrap(bytes, 0);
        }
    }

    private static Msg receive(MessageChannel ch) throws Exception {
        MemorySegment h = Arena.ofAuto().allocate(16);
        int fds;
        try (ReceivedFds f = ch.readFully(h, 4)) {
            fds = f.count();
        }
        long size = new VfioUserHeader.Decoder().wrap(h, 0).size();
        MemorySegment all = Arena.ofAuto().allocate(size);
        all.copyFrom(h);
        if (size > 16) {
            ch.readFully(all.asSlice(16));
        }
        return new Msg(all, fds);
    }

    private static byte[] payload(int size, java.util.function.Consumer<MemorySegment> fill) {
        MemorySegment p = Arena.ofAuto().allocate(size);
        fill.accept(p);
        return p.toArray(ValueLayout.JAVA_BYTE);
    }

    @Test
    void row1DmaUnmapAllFlagFromQemuDropsEveryWindow() throws Exception {
        withServer(ServerOptions.DEFAULTS, (raw, device, server) -> {
            send(raw, 2, VfioUserCommand.DMA_MAP.code(), 0, payload(32, p -> new DmaMap.Encoder().wrap(p, 0).argsz(32).flags(3)
                    .address(0x10000).size(0x1000)));
            assertFalse(receive(raw).header().isError());
            send(raw, 3, VfioUserCommand.DMA_UNMAP.code(), 0, payload(24, p -> new DmaUnmap.Encoder().wrap(p, 0).argsz(24)
                    .flags(DmaUnmap.FLAG_ALL)));
            Msg reply = receive(raw);
            assertFalse(reply.header().isError());
            assertEquals(16 + 24, reply.bytes().byteSize(), "the entry is echoed");
            assertTrue(server.currentSession().dma().windows().isEmpty());
        });
    }

    @Test
    void row2And3QemuDmaLayoutWhenConfigured() throws Exception {
        withServer(ServerOptions.DEFAULTS.withDmaLayout(DmaAccessLayout.QEMU), (raw, device, server) -> {
            send(raw, 2, VfioUserCommand.DMA_MAP.code(), 0, payload(32, p -> new DmaMap.Encoder().wrap(p, 0).argsz(32).flags(3)
                    .address(0x10000).size(0x1000)));
            receive(raw);
            device.bar0.set(ValueLayout.JAVA_LONG_UNALIGNED, 0x28, 0x1122334455667788L);
            send(raw, 4, VfioUserCommand.REGION_WRITE.code(), 0, payload(24, p -> {
                p.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, 0x20);
                p.set(ValueLayout.JAVA_INT_UNALIGNED, 8, SampleDevice.BAR0);
                p.set(ValueLayout.JAVA_INT_UNALIGNED, 12, 8);
                p.set(ValueLayout.JAVA_LONG_UNALIGNED, 16, 0x10100);
            }));
            Msg dmaWrite = receive(raw);
            assertEquals(VfioUserCommand.DMA_WRITE.code(), dmaWrite.header().command());
            MemorySegment p = dmaWrite.bytes().asSlice(16);
            assertEquals(0x10100, p.get(ValueLayout.JAVA_LONG_UNALIGNED, 0));
            assertEquals(8, p.get(ValueLayout.JAVA_INT_UNALIGNED, 8), "u32 count at 8");
            assertEquals(0x1122334455667788L, p.get(ValueLayout.JAVA_LONG_UNALIGNED, 12), "data at payload offset 12, as QEMU reads it");
            assertEquals(16 + 8, p.byteSize(), "VFIOUserDMARW's 4 bytes of tail padding included");
            MemorySegment reply = Arena.ofAuto().allocate(16); // QEMU answers DMA_WRITE with the header alone
            new VfioUserHeader.Encoder().wrap(reply, 0).reply(dmaWrite.header().msgId(), VfioUserCommand.DMA_WRITE.code(), 0);
            raw.write(reply);
            Msg done = receive(raw);
            assertEquals(4, done.header().msgId());
            assertFalse(done.header().isError());
        });
    }

    @Test
    void row3DmaWriteRepliesOfAllThreeShapesAreAccepted() throws Exception {
        for (int payload : new int[] {0, DmaAccess.WRITE_REPLY_SPEC_LENGTH, DmaAccess.ENCODED_LENGTH}) {
            MemorySegment m = Arena.ofAuto().allocate(16 + payload);
            new VfioUserHeader.Encoder().wrap(m, 0).reply(1, VfioUserCommand.DMA_WRITE.code(), payload);
            MessageValidator.checkReply(m, 0, VfioUserCommand.DMA_WRITE);
        }
    }

    @Test
    void row4RegionInfoRequestsAsLongAsArgszAreAcceptedAndAShortReplyCarriesNoFd() throws Exception {
        withServer(ServerOptions.DEFAULTS, (raw, device, server) -> {
            send(raw, 2, VfioUserCommand.DEVICE_GET_REGION_INFO.code(), 0, payload(32, p -> new RegionInfo.Encoder().wrap(p, 0)
                    .argsz(32).index(SampleDevice.BAR1)));
            Msg shortReply = receive(raw);
            assertEquals(0, shortReply.fds(), "no fd with a reply cut short");
            RegionInfo.Decoder cut = new RegionInfo.Decoder().wrap(shortReply.bytes(), 16);
            assertEquals(80, cut.argsz());
            assertEquals(0, cut.flags() & RegionInfo.FLAG_CAPS, "no CAPS flag without the chain (QEMU refuses cap_offset 0)");
            send(raw, 3, VfioUserCommand.DEVICE_GET_REGION_INFO.code(), 0, payload(80, p -> new RegionInfo.Encoder().wrap(p, 0)
                    .argsz(80).index(SampleDevice.BAR1)));
            Msg full = receive(raw);
            assertFalse(full.header().isError(), "an 80-byte request, as QEMU and libvfio-user's client send it");
            assertEquals(1, full.fds());
            assertEquals(16 + 80, full.bytes().byteSize());
        });
    }

    @Test
    void row5MigDataReadRepliesPaddedToTheAskedSizeAreAccepted() throws Exception {
        MemorySegment m = Arena.ofAuto().allocate(16 + 8 + 1024);
        new VfioUserHeader.Encoder().wrap(m, 0).reply(1, VfioUserCommand.MIG_DATA_READ.code(), 8 + 1024);
        new MigData.Encoder().wrap(m, 16).argsz(8 + 5).size(5);
        MessageValidator.checkReply(m, 0, VfioUserCommand.MIG_DATA_READ);
    }

    @Test
    void row6MigDataWriteArgszIsIgnoredByUsAndSentAsEightPlusSize() throws Exception {
        withServer(ServerOptions.DEFAULTS, (raw, device, server) -> {
            byte[] set = payload(16, p -> {
                p.set(ValueLayout.JAVA_INT_UNALIGNED, 0, 16);
                p.set(ValueLayout.JAVA_INT_UNALIGNED, 4, 0x20002);
                p.set(ValueLayout.JAVA_INT_UNALIGNED, 8, MigrationState.RESUMING.code());
            });
            send(raw, 2, VfioUserCommand.DEVICE_FEATURE.code(), 0, set);
            assertFalse(receive(raw).header().isError());
            send(raw, 3, VfioUserCommand.MIG_DATA_WRITE.code(), 0, payload(8 + 4, p -> new MigData.Encoder().wrap(p, 0).argsz(8).size(4)));
            assertFalse(receive(raw).header().isError(), "spec-style argsz 8");
            send(raw, 4, VfioUserCommand.MIG_DATA_WRITE.code(), 0, payload(8 + 4, p -> new MigData.Encoder().wrap(p, 0).argsz(12).size(4)));
            assertFalse(receive(raw).header().isError(), "libvfio-user-style argsz 8 + size");
        });
    }

    @Test
    void row7RegionWriteMultiWithNoReplyAsQemuSendsIt() throws Exception {
        withServer(ServerOptions.DEFAULTS, (raw, device, server) -> {
            send(raw, 2, VfioUserCommand.REGION_WRITE_MULTI.code(), VfioUserHeader.NO_REPLY, payload(8 + 24, p -> {
                new RegionWriteMulti.Encoder().wrap(p, 0).wrCnt(1);
                new RegionWriteMultiEntry.Encoder().wrap(p, 8).offset(0x30).region(SampleDevice.BAR0).count(4).data(0xABCD);
            }));
            send(raw, 3, VfioUserCommand.DEVICE_GET_INFO.code(), 0, payload(16, p -> p.set(ValueLayout.JAVA_INT_UNALIGNED, 0, 16)));
            assertEquals(3, receive(raw).header().msgId(), "no reply to the No_reply WRITE_MULTI");
            assertEquals(0xABCD, device.bar0.get(ValueLayout.JAVA_INT_UNALIGNED, 0x30));
        });
    }

    @Test
    void row8ReplyCapabilitiesHoldOnlyProposedKeysAndNeverTwinSocket() throws Exception {
        Capabilities server = Capabilities.builder().maxMsgFds(16).maxDataXferSize(1 << 20).maxDmaMaps(8).writeMultiple(true)
                .migration(4096, 0).build();
        Capabilities qemu = Capabilities.parse(("{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":1048576,\"pgsizes\":4096,"
                + "\"max_dma_maps\":65535,\"write_multiple\":true,\"migration\":{\"pgsize\":4096,\"max_bitmap_size\":268435456}}}")
                .getBytes(StandardCharsets.UTF_8));
        String reply = new String(server.answerTo(qemu).toJson(), StandardCharsets.UTF_8);
        for (String key : List.of("twin_socket")) {
            assertFalse(reply.contains(key), reply);
        }
        Capabilities libvfioUserClient = Capabilities.parse("{\"capabilities\":{\"max_msg_fds\":8,\"twin_socket\":{\"supported\":true}}}"
                .getBytes(StandardCharsets.UTF_8));
        assertFalse(server.answerTo(libvfioUserClient).has(Capabilities.KEY_TWIN_SOCKET));
        assertFalse(server.answerTo(libvfioUserClient).has(Capabilities.KEY_MIGRATION), "not proposed");
    }

    @Test
    void row9OurClientSendsMigDataWriteArgszEightPlusSize() throws Exception {
        Path socket = dir.resolve("c.sock");
        try (UnixListener listener = UnixListener.bind(socket)) {
            Thread peer = Thread.ofPlatform().daemon().start(() -> {
                try (MessageChannel ch = listener.accept()) {
                    Msg version = receive(ch);
                    MemorySegment r = Arena.ofAuto().allocate(16 + 4 + 1);
                    new VfioUserHeader.Encoder().wrap(r, 0).reply(version.header().msgId(), 1, 5);
                    ch.write(r);
                    Msg write = receive(ch);
                    MigData.Decoder d = new MigData.Decoder().wrap(write.bytes(), 16);
                    MemorySegment ack = Arena.ofAuto().allocate(16);
                    new VfioUserHeader.Encoder().wrap(ack, 0).reply(write.header().msgId(), 18, 0);
                    if (d.argsz() != 8 + d.size()) {
                        new VfioUserHeader.Encoder().wrap(ack, 0).errorReply(write.header().msgId(), 18, 22);
                    }
                    ch.write(ack);
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            try (VfioUserClient c = VfioUserClient.connect(socket)) {
                c.negotiate(Capabilities.builder().build());
                c.writeMigrationData(MemorySegment.ofArray(new byte[] {1, 2, 3}));
            }
            peer.join(5000);
        }
    }
}
