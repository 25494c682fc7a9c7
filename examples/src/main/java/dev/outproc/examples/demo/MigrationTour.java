package dev.outproc.examples.demo;

import dev.outproc.examples.blk.BlkLiveMigration;
import dev.outproc.examples.blk.FileBlockStore;
import dev.outproc.examples.blk.MemoryBlockStore;
import dev.outproc.examples.blk.VirtioBlkDevice;
import dev.outproc.migration.handshake.Incompatibility;
import dev.outproc.migration.model.Registry;
import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.SectionInfo;
import dev.outproc.vhost.backend.VhostUserBackend;
import dev.outproc.vhost.backend.VhostUserServer;
import dev.outproc.vhost.frontend.VhostUserFrontend;
import dev.outproc.vhost.frontend.VirtioBlkDriver;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Part three of the demo: live migration of a running virtio-blk device between two back-ends written
 * independently (file-backed and memory-backed), with the compatibility handshake first; then a
 * destination that does not match is refused with its reasons, before any state moves.
 */
final class MigrationTour {
    private static final long DISK = 16L << 20;
    private static final int BLOCK = 4096;

    private final PrintStream out;
    private final Path dir;

    MigrationTour(PrintStream out, Path dir) {
        this.out = out;
        this.dir = dir;
    }

    void run() throws Exception {
        out.println();
        out.println("[migration] a running device moves between two back-ends, handshake first");
        Path image = dir.resolve("migrating.img");
        try (FileChannel f = FileChannel.open(image, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            f.write(ByteBuffer.allocate(1), DISK - 1);
        }
        BlkLiveMigration migration = new BlkLiveMigration(Registry.builtin());
        try (FileBlockStore fileStore = FileBlockStore.open(image, false);
             MemoryBlockStore memoryStore = new MemoryBlockStore(DISK, false);
             MemoryBlockStore readOnlyStore = new MemoryBlockStore(DISK, true)) {
            VirtioBlkDevice fileDevice = new VirtioBlkDevice(fileStore, 1, 256, "outproc-demo");
            VirtioBlkDevice memoryDevice = new VirtioBlkDevice(memoryStore, 1, 256, "outproc-demo");
            VirtioBlkDevice readOnlyDevice = new VirtioBlkDevice(readOnlyStore, 1, 256, "outproc-demo");
            var a = new BlkLiveMigration.Endpoint(fileDevice, "outproc.dev/examples/file-blk", image.toString(), dir.resolve("a.sock"));
            var b = new BlkLiveMigration.Endpoint(memoryDevice, "outproc.dev/examples/memory-blk", "memory", dir.resolve("b.sock"));
            var c = new BlkLiveMigration.Endpoint(readOnlyDevice, "outproc.dev/examples/memory-blk", "memory", dir.resolve("c.sock"));
            try (VhostUserServer serverA = serve(fileDevice, a.socket());
                 VhostUserServer serverB = serve(memoryDevice, b.socket());
                 VhostUserServer serverC = serve(readOnlyDevice, c.socket())) {
                out.printf("  back-end A: file-backed virtio-blk (%s), back-end B: memory-backed virtio-blk, "
                        + "back-end C: memory-backed but read-only%n", "outproc.dev/examples/file-blk");
                VhostUserFrontend first = VhostUserFrontend.connect(a.socket());
                try (VirtioBlkDriver blk = VirtioBlkDriver.start(first, 1, BLOCK, false)) {
                    SplittableRandom random = new SplittableRandom(7);
                    Map<Long, byte[]> written = new HashMap<>();
                    write(blk, random, written, 200);
                    out.printf("  driver on A: wrote %d checksummed blocks%n", written.size());

                    BlkLiveMigration.Outcome refused = migration.handshake(a, c);
                    out.printf("  handshake A -> C: %s%n", refused.accepted() ? "accepted" : "REFUSED, no state sent:");
                    for (Incompatibility reason : refused.reasons()) {
                        out.printf("      %s%n", reason);
                    }

                    BlkLiveMigration.Outcome toB = migration.migrate(blk, first, a, b,
                            () -> fileStore.read(0, memoryStore.contents()));
                    describe("A -> B", toB);
                    int good = verify(blk, written);
                    write(blk, random, written, 100);
                    out.printf("  driver on B: %d of %d earlier blocks read back intact; %d more written (A served %d writes, B %d)%n",
                            good, good, 100, fileDevice.writes.get(), memoryDevice.writes.get());

                    BlkLiveMigration.Outcome toA = migration.migrate(blk, toB.frontend(), b, a,
                            () -> fileStore.write(0, memoryStore.contents()));
                    describe("B -> A", toA);
                    good = verify(blk, written);
                    out.printf("  driver on A again: %d of %d blocks intact after two migrations%n", good, written.size());
                    toA.frontend().close();
                    if (good != written.size()) {
                        throw new IllegalStateException("data lost across migration");
                    }
                }
            }
        }
    }

    private void describe(String route, BlkLiveMigration.Outcome outcome) throws IOException {
        if (!outcome.accepted()) {
            out.printf("  handshake %s: refused %s%n", route, outcome.reasons());
            throw new IllegalStateException("migration " + route + " refused");
        }
        List<String> sections = new ArrayList<>();
        try (DeviceStateReader r = DeviceStateReader.openUnattested(
                Channels.newChannel(new ByteArrayInputStream(outcome.stream())),
                VirtioBlkDevice.MODEL_ID, VirtioBlkDevice.FORMAT_CLASS, 1, 2)) {
            SectionInfo s;
            while ((s = r.nextSection()) != null) {
                sections.add(s.id() + (s.mustUnderstand() ? "" : "(skippable)"));
                var fields = r.fields();
                while (fields.next()) {
                    fields.skip();
                }
            }
        }
        out.printf("  handshake %s: accepted, format version %d, MAC keyed from the handshake; ring stopped at base 0x%x%n",
                route, outcome.agreement().formatVersion(), outcome.vringBase());
        out.printf("  state %s: %d bytes, sections %s, verified by the destination before use%n",
                route, outcome.stream().length, sections);
    }

    private static VhostUserServer serve(VirtioBlkDevice device, Path socket) throws IOException {
        VhostUserServer server = VhostUserServer.listen(device, new VhostUserBackend.Options(1, false), socket);
        Thread.ofPlatform().daemon(true).name("demo-migration-" + socket.getFileName()).start(server::run);
        return server;
    }

    private static void write(VirtioBlkDriver blk, SplittableRandom random, Map<Long, byte[]> written, int count)
            throws IOException {
        for (int i = 0; i < count; i++) {
            long sector = (long) random.nextInt((int) (DISK / BLOCK)) * (BLOCK / 512);
            byte[] data = new byte[BLOCK];
            random.nextBytes(data);
            if (blk.write(sector, data) != 0) {
                throw new IOException("write failed at sector " + sector);
            }
            written.put(sector, data);
        }
    }

    private static int verify(VirtioBlkDriver blk, Map<Long, byte[]> written) throws IOException {
        byte[] back = new byte[BLOCK];
        int good = 0;
        for (Map.Entry<Long, byte[]> e : written.entrySet()) {
            if (blk.read(e.getKey(), back) == 0 && java.util.Arrays.equals(back, e.getValue())) {
                good++;
            }
        }
        return good;
    }
}
