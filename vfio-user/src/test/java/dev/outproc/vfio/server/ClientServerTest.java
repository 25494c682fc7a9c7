package dev.outproc.vfio.server;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.fd.Errno;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.memory.MemFd;
import dev.outproc.core.memory.SharedMapping;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.core.transport.UnixListener;
import dev.outproc.vfio.client.VfioUserClient;
import dev.outproc.vfio.message.Capabilities;
import dev.outproc.vfio.message.DeviceFeature;
import dev.outproc.vfio.message.DeviceInfo;
import dev.outproc.vfio.message.DmaMap;
import dev.outproc.vfio.message.IrqSet;
import dev.outproc.vfio.message.RegionCapabilities;
import dev.outproc.vfio.message.RegionInfo;
import dev.outproc.vfio.message.VfioUserHeader;
import dev.outproc.vfio.message.VfioUserProtocolException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Our client against our server over a real Unix socket, command by command, errors included. */
class ClientServerTest {
    @TempDir
    Path dir;
    SampleDevice device;
    UnixListener listener;
    VfioUserServer server;
    Thread serving;
    Path socket;

    @BeforeEach
    void start() throws Exception {
        device = new SampleDevice();
        socket = dir.resolve("vfio.sock");
        listener = UnixListener.bind(socket);
        server = new VfioUserServer(device, ServerOptions.DEFAULTS.withMessageTimeoutMillis(500));
        serving = Thread.ofPlatform().daemon().start(() -> server.serve(listener));
    }

    @AfterEach
    void stop() throws Exception {
        listener.close();
        server.disconnectClient();
        serving.join(5000);
    }

    private VfioUserClient client() throws IOException {
        VfioUserClient c = VfioUserClient.connect(socket);
        c.negotiate(Capabilities.builder().maxMsgFds(8).maxDataXferSize(1 << 20).build());
        return c;
    }

    private static int errno(ThrowingRunnable r) {
        return assertThrows(VfioUserProtocolException.class, r::run).errno();
    }

    interface ThrowingRunnable {
        void run() throws Exception;
    }

    @Test
    void shouldNegotiateAndDescribeTheDevice() throws Exception {
        try (VfioUserClient c = VfioUserClient.connect(socket)) {
            Capabilities s = c.negotiate(Capabilities.builder().maxMsgFds(8).build());
            assertEquals(16, s.maxMsgFds());
            assertFalse(s.has(Capabilities.KEY_MIGRATION), "a key the client did not propose");
            VfioUserClient.DeviceInformation info = c.deviceInfo();
            assertEquals(DeviceInfo.FLAG_RESET | DeviceInfo.FLAG_PCI, info.flags());
            assertEquals(9, info.numRegions());
            assertEquals(5, info.numIrqs());
            assertEquals(4, c.irqInfo(Interrupts.MSIX).count());
            try (VfioUserClient.Region bar1 = c.regionInfo(SampleDevice.BAR1)) {
                assertEquals(SampleDevice.BAR1_SIZE, bar1.sizeBytes());
                assertTrue((bar1.flags() & RegionInfo.FLAG_MMAP) != 0);
                assertEquals(List.of(new RegionCapabilities.SparseArea(0x1000, 0x1000), new RegionCapabilities.SparseArea(0x3000, 0x1000)),
                        bar1.capabilities().sparseAreas());
                assertNotNull(bar1.fd());
                try (SharedMapping area = SharedMapping.map(bar1.fd().get(), bar1.mmapOffset() + 0x3000, 0x1000, true)) {
                    area.segment().set(ValueLayout.JAVA_INT_UNALIGNED, 8, 0xCAFE);
                    assertEquals(0xCAFE, device.bar1.segment().get(ValueLayout.JAVA_INT_UNALIGNED, 0x3008), "the sparse area is shared");
                }
            }
            assertEquals(Errno.EINVAL, errno(() -> c.regionInfo(9)));
            assertEquals(Errno.EINVAL, errno(() -> c.irqInfo(5)));
        }
    }

    @Test
    void shouldReadAndWriteRegionsAndRefuseOutOfBoundsAccess() throws Exception {
        try (VfioUserClient c = client(); Arena a = Arena.ofConfined()) {
            MemorySegment ids = a.allocate(4);
            c.regionRead(SampleDevice.CONFIG, 0, ids);
            assertEquals(0x00014e58, ids.get(ValueLayout.JAVA_INT_UNALIGNED, 0));
            MemorySegment value = a.allocate(8);
            value.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, 0x1122334455667788L);
            c.regionWrite(SampleDevice.BAR0, 0x40, value);
            assertEquals(0x1122334455667788L, device.bar0.get(ValueLayout.JAVA_LONG_UNALIGNED, 0x40));
            c.regionWrite(SampleDevice.BAR1, 0x10, value);
            assertEquals(0x1122334455667788L, device.bar1.segment().get(ValueLayout.JAVA_LONG_UNALIGNED, 0x10));
            assertEquals(Errno.EINVAL, errno(() -> c.regionRead(SampleDevice.BAR0, 252, a.allocate(8))));
            assertEquals(Errno.EINVAL, errno(() -> c.regionRead(SampleDevice.BAR0, -8, a.allocate(8))));
            assertEquals(Errno.EINVAL, errno(() -> c.regionWrite(2, 0, value)));
            assertEquals(Errno.EINVAL, errno(() -> c.regionRead(99, 0, a.allocate(4))));
            c.reset();
            assertEquals(0, device.bar0.get(ValueLayout.JAVA_LONG_UNALIGNED, 0x40));
        }
    }

    @Test
    void shouldMapDmaWithAnFdLetTheDeviceWriteItAndRefuseOverlapsAndUnknownUnmaps() throws Exception {
        try (VfioUserClient c = client(); GuestRegion ram = GuestRegion.allocate(0x10_0000, 0x10_0000, 0); Arena a = Arena.ofConfined()) {
            c.dmaMap(0x10_0000, 0x10_0000, DmaMap.FLAG_READ | DmaMap.FLAG_WRITE, ram.fd(), 0);
            MemorySegment regs = a.allocate(16);
            regs.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, 0x10_2000);
            regs.set(ValueLayout.JAVA_LONG_UNALIGNED, 8, 0xA5A5_5A5A_1234_5678L);
            c.regionWrite(SampleDevice.BAR0, 0x28, regs.asSlice(8, 8));
            c.regionWrite(SampleDevice.BAR0, 0x20, regs.asSlice(0, 8));
            assertEquals(0xA5A5_5A5A_1234_5678L, ram.segment().get(ValueLayout.JAVA_LONG_UNALIGNED, 0x2000));
            assertEquals(Errno.EEXIST, errno(() -> c.dmaMap(0x18_0000, 0x10_0000, DmaMap.FLAG_READ, ram.fd(), 0)));
            assertEquals(Errno.ENOENT, errno(() -> c.dmaUnmap(0x10_0000, 0x1000)));
            c.dmaUnmap(0x10_0000, 0x10_0000);
            assertEquals(Errno.EIO, errno(() -> c.regionWrite(SampleDevice.BAR0, 0x20, regs.asSlice(0, 8))), "no window any more");
            c.dmaMap(0x10_0000, 0x10_0000, DmaMap.FLAG_READ, ram.fd(), 0);
            assertEquals(Errno.EIO, errno(() -> c.regionWrite(SampleDevice.BAR0, 0x20, regs.asSlice(0, 8))), "read-only window");
            c.dmaUnmapAll();
            assertTrue(server.currentSession().dma().windows().isEmpty());
        }
    }

    @Test
    void shouldAnswerServerDmaWritesForWindowsWithoutAnFd() throws Exception {
        try (VfioUserClient c = client(); GuestRegion ram = GuestRegion.allocate(0x20_0000, 0x1000, 0); Arena a = Arena.ofConfined()) {
            c.serveDmaFrom(GuestMemory.of(List.of(ram)));
            c.dmaMap(0x20_0000, 0x1000, DmaMap.FLAG_READ | DmaMap.FLAG_WRITE, null, 0);
            MemorySegment regs = a.allocate(16);
            regs.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, 0x20_0100);
            regs.set(ValueLayout.JAVA_LONG_UNALIGNED, 8, 0x0102_0304_0506_0708L);
            c.regionWrite(SampleDevice.BAR0, 0x28, regs.asSlice(8, 8));
            c.regionWrite(SampleDevice.BAR0, 0x20, regs.asSlice(0, 8));
            assertEquals(0x0102_0304_0506_0708L, ram.segment().get(ValueLayout.JAVA_LONG_UNALIGNED, 0x100));
        }
    }

    @Test
    void shouldSignalInstalledEventfdsAndHonourMasking() throws Exception {
        try (VfioUserClient c = client(); Arena a = Arena.ofConfined()) {
            List<EventFd> fds = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                fds.add(EventFd.create());
            }
            try {
                assertEquals(1, c.setIrqEventFds(Interrupts.MSIX, 0, fds));
                MemorySegment one = a.allocate(4);
                c.regionWrite(SampleDevice.BAR0, 0x10, one);
                assertEquals(1, fds.get(0).drain());
                c.setIrqs(Interrupts.MSIX, IrqSet.ACTION_MASK, 0, 2, new byte[] {1, 0});
                c.regionWrite(SampleDevice.BAR0, 0x10, one);
                assertEquals(0, fds.get(0).drain(), "masked: pending, not signalled");
                assertTrue(server.currentSession().interrupts().isPending(Interrupts.MSIX, 0));
                c.setIrqs(Interrupts.MSIX, IrqSet.ACTION_UNMASK, 0, 1, null);
                assertEquals(1, fds.get(0).drain(), "unmask delivers the pending interrupt");
                c.setIrqs(Interrupts.MSIX, IrqSet.ACTION_TRIGGER, 3, 1, null);
                assertEquals(1, fds.get(3).drain());
                c.setIrqs(Interrupts.MSIX, IrqSet.ACTION_TRIGGER, 0, 0, null);
                assertEquals(0, server.currentSession().interrupts().installedCount(), "count 0 with DATA_NONE disables the index");
                assertEquals(Errno.EINVAL, errno(() -> c.setIrqs(Interrupts.MSIX, IrqSet.ACTION_TRIGGER, 3, 2, null)));
            } finally {
                fds.forEach(EventFd::close);
            }
        }
    }

    @Test
    void shouldSplitEventfdBatchesByTheServersMaxMsgFds() throws Exception {
        listener.close();
        server.disconnectClient();
        serving.join(5000);
        listener = UnixListener.bind(dir.resolve("small.sock"));
        server = new VfioUserServer(device, new ServerOptions(1, 1 << 20, 16, 1L << 30, dev.outproc.vfio.message.DmaAccessLayout.SPEC, 1000, 500));
        serving = Thread.ofPlatform().daemon().start(() -> server.serve(listener));
        try (VfioUserClient c = VfioUserClient.connect(dir.resolve("small.sock"))) {
            c.negotiate(Capabilities.builder().maxMsgFds(8).build());
            List<EventFd> fds = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                fds.add(EventFd.create());
            }
            try {
                assertEquals(4, c.setIrqEventFds(Interrupts.MSIX, 0, fds));
                assertEquals(4, server.currentSession().interrupts().installedCount());
            } finally {
                fds.forEach(EventFd::close);
            }
        }
    }

    @Test
    void shouldMigrateTheDeviceStateFromOneServerToAnother() throws Exception {
        SampleDevice target = new SampleDevice();
        Path socketB = dir.resolve("b.sock");
        try (UnixListener listenerB = UnixListener.bind(socketB)) {
            VfioUserServer serverB = new VfioUserServer(target, ServerOptions.DEFAULTS);
            Thread b = Thread.ofPlatform().daemon().start(() -> serverB.serve(listenerB));
            try (VfioUserClient source = client(); VfioUserClient dest = VfioUserClient.connect(socketB); Arena a = Arena.ofConfined()) {
                dest.negotiate(Capabilities.builder().build());
                for (int i = 0; i < 256; i += 8) {
                    device.bar0.set(ValueLayout.JAVA_LONG_UNALIGNED, i, 0x0101_0101_0101_0101L * (i + 1));
                }
                assertEquals(dev.outproc.vfio.message.MigrationFeature.STOP_COPY | dev.outproc.vfio.message.MigrationFeature.PRE_COPY,
                        source.migrationFlags());
                assertEquals(MigrationState.PRE_COPY.code(), source.migrationState(MigrationState.PRE_COPY.code()));
                assertEquals(Errno.EINVAL, errno(() -> dest.migrationState(MigrationState.PRE_COPY_P2P.code())), "P2P not offered");
                assertEquals(MigrationState.STOP_COPY.code(), source.migrationState(MigrationState.STOP_COPY.code()));
                assertEquals(Errno.EINVAL, errno(() -> source.migrationState(MigrationState.PRE_COPY.code())), "STOP_COPY -> PRE_COPY");
                assertEquals(MigrationState.RESUMING.code(), dest.migrationState(MigrationState.RESUMING.code()));
                MemorySegment chunk = a.allocate(100);
                long moved = 0;
                while (true) {
                    long n = source.readMigrationData(chunk);
                    if (n > 0) {
                        dest.writeMigrationData(chunk.asSlice(0, n));
                    }
                    moved += n;
                    if (n < chunk.byteSize()) {
                        break;
                    }
                }
                assertEquals(256, moved);
                assertEquals(MigrationState.RUNNING.code(), dest.migrationState(MigrationState.RUNNING.code()));
                assertArrayEquals(device.bar0.toArray(ValueLayout.JAVA_BYTE), target.bar0.toArray(ValueLayout.JAVA_BYTE));
                assertEquals(MigrationState.STOP.code(), source.migrationState(MigrationState.STOP.code()));
                assertEquals(Errno.EINVAL, errno(() -> source.readMigrationData(chunk)), "no data outside the saving group");
            } finally {
                listenerB.close();
                serverB.disconnectClient();
                b.join(5000);
            }
        }
    }

    @Test
    void shouldMigrateWithTheDriverThroughPreCopyAndStopCopy() throws Exception {
        SampleDevice target = new SampleDevice();
        Path socketB = dir.resolve("d.sock");
        try (UnixListener listenerB = UnixListener.bind(socketB)) {
            VfioUserServer serverB = new VfioUserServer(target, ServerOptions.DEFAULTS);
            Thread b = Thread.ofPlatform().daemon().start(() -> serverB.serve(listenerB));
            try (VfioUserClient source = client(); VfioUserClient dest = VfioUserClient.connect(socketB)) {
                dest.negotiate(Capabilities.builder().build());
                device.bar0.set(ValueLayout.JAVA_LONG_UNALIGNED, 0x40, 0x0123_4567_89AB_CDEFL);
                dev.outproc.vfio.client.MigrationDriver.Result r = dev.outproc.vfio.client.MigrationDriver.migrate(source, dest, 64);
                assertEquals(256, r.preCopyBytes(), "the whole register file in PRE_COPY");
                assertEquals(256, r.stopCopyBytes(), "and again, final, in STOP_COPY");
                assertEquals(MigrationState.STOP.code(), r.sourceState());
                assertEquals(MigrationState.RUNNING.code(), r.destinationState());
                assertEquals(0x0123_4567_89AB_CDEFL, target.bar0.get(ValueLayout.JAVA_LONG_UNALIGNED, 0x40));
            } finally {
                listenerB.close();
                serverB.disconnectClient();
                b.join(5000);
            }
        }
    }

    @Test
    void shouldReportExactlyThePagesTheDeviceWroteWhileLogging() throws Exception {
        try (VfioUserClient c = client(); GuestRegion ram = GuestRegion.allocate(0x100_0000, 0x40000, 0); Arena a = Arena.ofConfined()) {
            c.dmaMap(0x100_0000, 0x40000, DmaMap.FLAG_READ | DmaMap.FLAG_WRITE, ram.fd(), 0);
            assertTrue(c.probeFeature(DeviceFeature.DMA_LOGGING_START, DeviceFeature.SET));
            c.startDmaLogging(4096, List.of(new long[] {0x100_0000, 0x40000}));
            MemorySegment regs = a.allocate(8);
            for (long page : new long[] {0, 3, 63}) {
                regs.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, 0x100_0000 + page * 4096 + 16);
                c.regionWrite(SampleDevice.BAR0, 0x20, regs);
            }
            long[] bitmap = c.dmaLoggingReport(0x100_0000, 0x40000, 4096);
            assertArrayEquals(new long[] {(1L << 0) | (1L << 3) | (1L << 63)}, bitmap);
            assertArrayEquals(new long[] {0}, c.dmaLoggingReport(0x100_0000, 0x40000, 4096), "a report clears");
            c.stopDmaLogging();
            assertEquals(Errno.EINVAL, errno(() -> c.dmaLoggingReport(0x100_0000, 0x40000, 4096)));
        }
    }

    @Test
    void shouldServeTheNextClientWithAResetDevice() throws Exception {
        int resetsBefore = device.resets;
        try (VfioUserClient c = client(); Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(4);
            v.set(ValueLayout.JAVA_INT_UNALIGNED, 0, 77);
            c.regionWrite(SampleDevice.BAR0, 0x80, v);
        }
        try (VfioUserClient c = client(); Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(4);
            c.regionRead(SampleDevice.BAR0, 0x80, v);
            assertEquals(0, v.get(ValueLayout.JAVA_INT_UNALIGNED, 0));
            assertTrue(device.resets > resetsBefore);
        }
    }

    // ---- raw messages: what a careless or hostile client sends ----

    private static MemorySegment raw(int msgId, int command, int flags, byte[] payload) {
        MemorySegment m = Arena.ofAuto().allocate(VfioUserHeader.ENCODED_LENGTH + payload.length);
        new VfioUserHeader.Encoder().wrap(m, 0).msgId(msgId).command(command).size(m.byteSize()).flags(flags).error(0);
        MemorySegment.copy(payload, 0, m, ValueLayout.JAVA_BYTE, VfioUserHeader.ENCODED_LENGTH, payload.length);
        return m;
    }

    private static VfioUserHeader.Decoder readReply(MessageChannel ch) throws IOException {
        MemorySegment h = Arena.ofAuto().allocate(VfioUserHeader.ENCODED_LENGTH);
        ch.readFully(h);
        VfioUserHeader.Decoder d = new VfioUserHeader.Decoder().wrap(h, 0);
        if (d.size() > VfioUserHeader.ENCODED_LENGTH) {
            ch.readFully(Arena.ofAuto().allocate(d.size() - VfioUserHeader.ENCODED_LENGTH));
        }
        return d;
    }

    private static byte[] versionPayload() {
        byte[] json = "{\"capabilities\":{}}\0".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        byte[] p = new byte[4 + json.length];
        System.arraycopy(json, 0, p, 4, json.length);
        return p;
    }

    private static long openFds() throws IOException {
        return RawClient.openFds();
    }

    @Test
    void shouldAnswerHostileMessagesWithTheRightErrnoAndKeepServing() throws Exception {
        long fdsBefore = openFds();
        try (MessageChannel ch = MessageChannel.connect(socket)) {
            ch.write(raw(1, 4, 0, new byte[16]));
            VfioUserHeader.Decoder r = readReply(ch);
            assertTrue(r.isError());
            assertEquals(Errno.EINVAL, r.error(), "GET_INFO before VERSION");
            assertEquals(1, r.msgId());
            ch.write(raw(2, 1, 0, versionPayload()));
            assertFalse(readReply(ch).isError());
            ch.write(raw(3, 1, 0, versionPayload()));
            assertEquals(Errno.EINVAL, readReply(ch).error(), "VERSION twice");
            ch.write(raw(4, 99, 0, new byte[0]));
            assertEquals(Errno.ENOSYS, readReply(ch).error(), "unknown command");
            ch.write(raw(5, 14, 0, new byte[0]));
            assertEquals(Errno.ENOTSUP, readReply(ch).error(), "retired command 14");
            ch.write(raw(6, 4, 0, new byte[12]));
            assertEquals(Errno.EINVAL, readReply(ch).error(), "short GET_INFO");
            ch.write(raw(7, 16, 0, new byte[6]));
            assertEquals(Errno.EINVAL, readReply(ch).error(), "DEVICE_FEATURE shorter than its fixed part");
            byte[] setState = new byte[8 + 2];
            setState[6] = 2; // flags = SET (bit 17) | MIG_DEVICE_STATE: 0x00020002
            setState[4] = 2;
            ch.write(raw(8, 16, 0, setState));
            assertEquals(Errno.EINVAL, readReply(ch).error(), "MIG_DEVICE_STATE SET with 2 data bytes");
            try (EventFd e1 = EventFd.create(); EventFd e2 = EventFd.create()) {
                ch.write(raw(9, 13, 0, new byte[0]), List.of(e1.owner(), e2.owner()));
                assertEquals(Errno.EINVAL, readReply(ch).error(), "fds with DEVICE_RESET");
            }
            List<EventFd> many = new ArrayList<>();
            try {
                for (int i = 0; i < 20; i++) {
                    many.add(EventFd.create());
                }
                byte[] setIrqs = new byte[20];
                setIrqs[0] = 20;
                setIrqs[4] = 0x24; // DATA_EVENTFD | ACTION_TRIGGER
                setIrqs[8] = Interrupts.MSIX;
                setIrqs[16] = 20;
                ch.write(raw(15, 8, 0, setIrqs), many.stream().map(EventFd::owner).toList());
                assertEquals(Errno.EINVAL, readReply(ch).error(), "20 fds, over the server's max_msg_fds of 16");
            } finally {
                many.forEach(EventFd::close);
            }
            byte[] bigRead = new byte[16];
            bigRead[8] = 0;
            bigRead[12] = 0;
            bigRead[14] = 0x20; // count = 0x200000 > max_data_xfer_size
            ch.write(raw(10, 9, 0, bigRead));
            assertEquals(Errno.E2BIG, readReply(ch).error(), "REGION_READ over max_data_xfer_size");
            ch.write(raw(11, 13, VfioUserHeader.NO_REPLY, new byte[0]));
            ch.write(raw(12, 4, 0, new byte[] {16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
            VfioUserHeader.Decoder next = readReply(ch);
            assertEquals(12, next.msgId(), "No_reply got no reply");
            assertFalse(next.isError());
            ch.write(raw(13, 99, VfioUserHeader.NO_REPLY, new byte[0]));
            ch.write(raw(14, 13, 0, new byte[0]));
            assertEquals(14, readReply(ch).msgId(), "not even an error reply for a No_reply command");
        }
        try (MessageChannel ch = MessageChannel.connect(socket)) {
            MemorySegment partial = raw(1, 1, 0, versionPayload());
            ch.write(partial.asSlice(0, 20));
            MemorySegment h = Arena.ofAuto().allocate(1);
            assertThrows(IOException.class, () -> ch.readFully(h), "a partial message then silence loses the connection");
        }
        try (VfioUserClient c = client()) {
            assertEquals(9, c.deviceInfo().numRegions(), "the next client is served");
        }
        long deadline = System.nanoTime() + 5_000_000_000L; // the server closes a lost connection's fds on its own thread
        while (openFds() > fdsBefore + 1 && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertTrue(openFds() <= fdsBefore + 1, "fds leaked: " + fdsBefore + " -> " + openFds());
    }

    @Test
    void shouldCloseAConnectionWhoseHeaderBreaksFramingAndServeTheNext() throws Exception {
        try (MessageChannel ch = MessageChannel.connect(socket)) {
            MemorySegment bad = raw(1, 1, 0, new byte[0]);
            new VfioUserHeader.Encoder().wrap(bad, 0).size(8);
            ch.write(bad);
            VfioUserHeader.Decoder r = readReply(ch);
            assertEquals(Errno.EINVAL, r.error());
            assertThrows(IOException.class, () -> ch.readFully(Arena.ofAuto().allocate(1)));
        }
        try (MessageChannel ch = MessageChannel.connect(socket)) {
            MemorySegment huge = raw(1, 10, 0, new byte[0]);
            new VfioUserHeader.Encoder().wrap(huge, 0).size(64L << 20);
            ch.write(huge);
            assertEquals(Errno.E2BIG, readReply(ch).error());
        }
        try (VfioUserClient c = client()) {
            assertEquals(5, c.deviceInfo().numIrqs());
        }
    }

    @Test
    void shouldRefuseOverlappingAndMisalignedDmaMapsWithErrnos() throws Exception {
        try (VfioUserClient c = client(); OwnedFd fd = MemFd.create("dma", 0x4000)) {
            c.dmaMap(0x4000, 0x4000, DmaMap.FLAG_READ, fd, 0);
            assertEquals(Errno.EEXIST, errno(() -> c.dmaMap(0x6000, 0x1000, DmaMap.FLAG_READ, fd, 0)));
            assertEquals(Errno.EINVAL, errno(() -> c.dmaMap(0x9001, 0x1000, DmaMap.FLAG_READ, fd, 0)));
            assertEquals(Errno.ENOENT, errno(() -> c.dmaUnmap(0x4000, 0x2000)));
            c.dmaUnmap(0x4000, 0x4000);
        }
    }
}
