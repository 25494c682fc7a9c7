package dev.outproc.examples.demo;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.transport.UnixListener;
import dev.outproc.examples.migration.HandshakeBeforeTransfer;
import dev.outproc.examples.migration.MigrationEndpointServer;
import dev.outproc.examples.migration.MigrationOptions;
import dev.outproc.examples.vfio.SampleCard;
import dev.outproc.migration.handshake.HandshakeRelay;
import dev.outproc.migration.handshake.Incompatibility;
import dev.outproc.vfio.client.DeviceReport;
import dev.outproc.vfio.client.MigrationDriver;
import dev.outproc.vfio.client.VfioUserClient;
import dev.outproc.vfio.message.Capabilities;
import dev.outproc.vfio.message.DmaMap;
import dev.outproc.vfio.server.Interrupts;
import dev.outproc.vfio.server.MigrationState;
import dev.outproc.vfio.server.ServerOptions;
import dev.outproc.vfio.server.VfioUserServer;

import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * Part four of the demo: a vfio-user PCI device. The sample card is served in this process; outproc's client
 * enumerates it like {@code lspci -vv}, exercises its BAR0 registers, shares guest memory for its DMA and receives
 * its interrupt on an eventfd; then the card migrates to a second server with PRE_COPY, the compatibility handshake
 * first, after an incompatible destination has been refused with its reasons.
 */
final class VfioUserTour {
    private static final long GUEST_RAM = 0x10_0000;
    private static final long GUEST_RAM_BYTES = 0x10_0000;

    private final PrintStream out;
    private final Path dir;
    private final List<AutoCloseable> running = new ArrayList<>();

    VfioUserTour(PrintStream out, Path dir) {
        this.out = out;
        this.dir = dir;
    }

    /** A card served on a socket, with its migration endpoint. */
    private record Served(SampleCard card, VfioUserServer server, Path socket, Path handshake) {
    }

    void run() throws Exception {
        out.println();
        out.println("[vfio-user] a PCI card served over vfio-user: enumerate, registers, DMA and interrupt, migration");
        try {
            Served a = serve("vfio-a", SampleCard.BAR2_SIZE);
            Served b = serve("vfio-b", SampleCard.BAR2_SIZE);
            Served c = serve("vfio-c", 2 * SampleCard.BAR2_SIZE);
            long bar2Checksum;
            try (VfioUserClient client = connect(a.socket())) {
                out.println("  vfio-user-client info (like lspci -vv):");
                DeviceReport.of(client).lines().forEach(line -> out.println("    " + line));
                exerciseRegisters(client);
                receiveInterrupt(client);
                bar2Checksum = fillBar2(client);

                HandshakeRelay.Outcome refused = HandshakeBeforeTransfer.relay("unix:" + a.handshake(), "unix:" + c.handshake());
                out.printf("  handshake A -> C (BAR2 of 16 KiB): %s%n", refused.agreed() ? "accepted" : "REFUSED, no state sent:");
                for (Incompatibility reason : refused.reasons()) {
                    out.printf("      %s%n", reason);
                }
                HandshakeRelay.Outcome agreed = HandshakeBeforeTransfer.relay("unix:" + a.handshake(), "unix:" + b.handshake());
                if (!agreed.agreed()) {
                    throw new IllegalStateException("handshake A -> B refused: " + HandshakeBeforeTransfer.json(agreed));
                }
                out.printf("  handshake A -> B: accepted, format class %s version %d%n", agreed.accept().formatClass(),
                        agreed.accept().formatVersion());
                try (VfioUserClient destination = connect(b.socket())) {
                    MigrationDriver.Result r = MigrationDriver.migrate(client, destination, 4096);
                    out.printf("  migrated A -> B: %d bytes in PRE_COPY (card running), %d in STOP_COPY; A is %s, B is %s%n",
                            r.preCopyBytes(), r.stopCopyBytes(), MigrationState.of(r.sourceState()), MigrationState.of(r.destinationState()));
                    int scratch = read32(destination, SampleCard.SCRATCH);
                    long arrived = checksum(destination, 2, b.card().bar2Bytes());
                    out.printf("  on B: SCRATCH=0x%08x, BAR2 CRC32C %08x (A had %08x)%n", scratch, arrived, bar2Checksum);
                    if (scratch != 0x0D15EA5E || arrived != bar2Checksum) {
                        throw new IllegalStateException("the card's state did not arrive intact");
                    }
                    out.println("  the card's registers and BAR2 arrived intact");
                }
            }
        } finally {
            for (AutoCloseable r : running.reversed()) {
                r.close();
            }
        }
    }

    private Served serve(String name, long bar2Bytes) throws IOException {
        SampleCard card = new SampleCard(bar2Bytes, true);
        VfioUserServer server = new VfioUserServer(card.device(), ServerOptions.DEFAULTS);
        Path socket = dir.resolve(name + ".sock");
        UnixListener listener = UnixListener.bind(socket);
        Thread thread = Thread.ofPlatform().daemon(true).name("demo-" + name).start(() -> server.serve(listener));
        running.add(() -> {
            listener.close();
            server.disconnectClient();
            thread.join(5000);
        });
        Path handshake = dir.resolve(name + ".mig");
        running.add(MigrationEndpointServer.start(handshake, new MigrationOptions().sessions(card.descriptor()), card::migrationAgreed));
        return new Served(card, server, socket, handshake);
    }

    private static VfioUserClient connect(Path socket) throws IOException {
        VfioUserClient client = VfioUserClient.connect(socket);
        try {
            client.negotiate(Capabilities.builder().maxMsgFds(16).maxDataXferSize(1 << 20).twinSocket(true, -1).build());
            return client;
        } catch (IOException | RuntimeException e) {
            client.close();
            throw e;
        }
    }

    private void exerciseRegisters(VfioUserClient client) throws IOException {
        write32(client, SampleCard.SCRATCH, 0x0D15EA5E);
        int scratch = read32(client, SampleCard.SCRATCH);
        int first = read32(client, SampleCard.COUNTER);
        int second = read32(client, SampleCard.COUNTER);
        out.printf("  BAR0: ID=0x%08x, SCRATCH written and read back 0x%08x, COUNTER counts its reads: %d then %d%n",
                read32(client, SampleCard.ID), scratch, first, second);
    }

    private void receiveInterrupt(VfioUserClient client) throws IOException {
        try (GuestRegion ram = GuestRegion.allocate(GUEST_RAM, GUEST_RAM_BYTES, 0); EventFd intx = EventFd.create();
             Arena arena = Arena.ofConfined()) {
            client.dmaMap(GUEST_RAM, GUEST_RAM_BYTES, DmaMap.FLAG_READ | DmaMap.FLAG_WRITE, ram.fd(), 0);
            client.setIrqEventFds(Interrupts.INTX, 0, List.of(intx));
            MemorySegment address = arena.allocate(8);
            address.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, GUEST_RAM + 0x2000);
            client.regionWrite(0, SampleCard.DMA_ADDR, address);
            write32(client, SampleCard.DMA_LEN, SampleCard.MAX_DMA);
            write32(client, SampleCard.SEED, 0x40);
            write32(client, SampleCard.DOORBELL, 1);
            long signals = intx.drain();
            int wrong = 0;
            for (int i = 0; i < SampleCard.MAX_DMA; i++) {
                if (ram.segment().get(ValueLayout.JAVA_BYTE, 0x2000 + i) != (byte) (0x40 + i)) {
                    wrong++;
                }
            }
            out.printf("  doorbell: the card wrote %d bytes into guest memory by DMA (%d wrong) and raised INTx (%d signal on the eventfd); "
                    + "STATUS=0x%x%n", SampleCard.MAX_DMA, wrong, signals, read32(client, SampleCard.STATUS));
            client.dmaUnmap(GUEST_RAM, GUEST_RAM_BYTES);
            if (wrong != 0 || signals != 1) {
                throw new IllegalStateException("DMA or interrupt went wrong: " + wrong + " bytes, " + signals + " signals");
            }
        }
    }

    private long fillBar2(VfioUserClient client) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment page = arena.allocate(4096);
            for (long at = 0; at < SampleCard.BAR2_SIZE; at += page.byteSize()) {
                for (int i = 0; i < page.byteSize(); i++) {
                    page.set(ValueLayout.JAVA_BYTE, i, (byte) ((at + i) * 31 >>> 3));
                }
                client.regionWrite(2, at, page);
            }
        }
        return checksum(client, 2, SampleCard.BAR2_SIZE);
    }

    private static long checksum(VfioUserClient client, int region, long bytes) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment all = arena.allocate(bytes);
            client.regionRead(region, 0, all);
            CRC32C crc = new CRC32C();
            crc.update(all.asByteBuffer());
            return crc.getValue();
        }
    }

    private static void write32(VfioUserClient client, int offset, int value) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocate(4);
            v.set(ValueLayout.JAVA_INT_UNALIGNED, 0, value);
            client.regionWrite(0, offset, v);
        }
    }

    private static int read32(VfioUserClient client, int offset) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocate(4);
            client.regionRead(0, offset, v);
            return v.get(ValueLayout.JAVA_INT_UNALIGNED, 0);
        }
    }
}
