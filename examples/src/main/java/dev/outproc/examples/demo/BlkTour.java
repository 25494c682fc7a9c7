package dev.outproc.examples.demo;

import dev.outproc.examples.blk.FileBlockStore;
import dev.outproc.examples.blk.VirtioBlkDevice;
import dev.outproc.vhost.backend.VhostUserBackend;
import dev.outproc.vhost.backend.VhostUserServer;
import dev.outproc.vhost.frontend.VhostUserFrontend;
import dev.outproc.vhost.frontend.VirtioBlkDriver;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.core.virtio.VirtioFeature;

import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.zip.CRC32C;

/**
 * Part two of the demo: a vhost-user-blk back-end (outproc's) and a virtio-blk driver on outproc's
 * front-end, in one process tree, over a real Unix socket and memfd guest memory. The driver writes
 * checksummed blocks with several requests in flight, reads them back, and the tour checks the image
 * file itself.
 */
final class BlkTour {
    private final PrintStream out;
    private final Path dir;
    private final int requests;
    private final int depth;

    BlkTour(PrintStream out, Path dir, int requests, int depth) {
        this.out = out;
        this.dir = dir;
        this.requests = requests;
        this.depth = depth;
    }

    void run() throws Exception {
        out.println();
        out.println("[vhost-user] a vhost-user-blk back-end and a virtio-blk driver over a real socket");
        Path image = dir.resolve("disk.img");
        long imageBytes = 64L << 20;
        try (FileChannel f = FileChannel.open(image, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            f.write(ByteBuffer.allocate(1), imageBytes - 1);
        }
        Path socket = dir.resolve("vhost-user-blk.sock");
        try (FileBlockStore store = FileBlockStore.open(image, false)) {
            VirtioBlkDevice device = new VirtioBlkDevice(store, 1, 256, "outproc-demo");
            try (VhostUserServer server = VhostUserServer.listen(device, new VhostUserBackend.Options(1, false), socket)) {
                Thread serving = Thread.ofPlatform().name("demo-vhost-user-blk").daemon(true).start(server::run);
                out.printf("  back-end: serving %s on %s%n", store.describe(), socket);
                try (VirtioBlkDriver blk = VirtioBlkDriver.start(VhostUserFrontend.connect(socket), depth, 64 * 1024, false)) {
                    describeNegotiation(blk);
                    ioRound(blk, image);
                }
                server.close();
                serving.join(5000);
                out.printf("  back-end: %d reads, %d writes, %d MiB moved, %d errors; front-end gone, rings stopped, memory unmapped%n",
                        device.reads.get(), device.writes.get(), device.bytes.get() >> 20, device.errors.get());
            }
        }
    }

    private void describeNegotiation(VirtioBlkDriver blk) throws IOException {
        long f = blk.features();
        List<String> names = new ArrayList<>();
        for (VirtioFeature v : VirtioFeature.values()) {
            if (v.isSetIn(f)) {
                names.add(v.name());
            }
        }
        List<String> protocol = new ArrayList<>();
        for (ProtocolFeature p : ProtocolFeature.values()) {
            if (p.isSetIn(blk.frontend().protocolFeatures())) {
                protocol.add(p.name());
            }
        }
        out.printf("  front-end: negotiated virtio features 0x%x: %s%n", f, String.join(" ", names));
        out.printf("  front-end: protocol features: %s%n", String.join(" ", protocol));
        out.printf("  front-end: GET_CONFIG capacity %d sectors, device id \"%s\"%n", blk.capacitySectors(), blk.getId());
    }

    private void ioRound(VirtioBlkDriver blk, Path image) throws IOException {
        int blockBytes = 64 * 1024;
        int blocksOnDisk = (int) (blk.capacitySectors() * 512 / blockBytes);
        SplittableRandom random = new SplittableRandom(42);
        long[] crcByBlock = new long[blocksOnDisk];
        boolean[] written = new boolean[blocksOnDisk];
        int[] blockOfSlot = new int[depth];
        CRC32C crc = new CRC32C();
        byte[] noise = new byte[blockBytes];
        long start = System.nanoTime();
        int submitted = 0;
        int completed = 0;
        int errors = 0;
        // Writes: keep `depth` requests in flight.
        for (int slot = 0; slot < depth && submitted < requests; slot++) {
            submitted += submitWrite(blk, slot, submitted % blocksOnDisk, random, noise, crc, crcByBlock, written, blockOfSlot);
        }
        blk.kick();
        while (completed < requests) {
            int slot = blk.awaitCompletion();
            completed++;
            if (blk.status(slot) != 0) {
                errors++;
            }
            if (submitted < requests) {
                submitted += submitWrite(blk, slot, submitted % blocksOnDisk, random, noise, crc, crcByBlock, written, blockOfSlot);
                blk.kick();
            }
        }
        double writeSeconds = (System.nanoTime() - start) / 1e9;
        // Reads: read every written block back and compare checksums.
        start = System.nanoTime();
        int mismatches = 0;
        int reads = 0;
        byte[] back = new byte[blockBytes];
        for (int b = 0; b < blocksOnDisk; b++) {
            if (!written[b]) {
                continue;
            }
            if (blk.read((long) b * blockBytes / 512, back) != 0) {
                errors++;
            }
            crc.reset();
            crc.update(back);
            if (crc.getValue() != crcByBlock[b]) {
                mismatches++;
            }
            reads++;
        }
        double readSeconds = (System.nanoTime() - start) / 1e9;
        blk.flush();
        int onDisk = verifyImage(image, blockBytes, crcByBlock, written);
        out.printf("  front-end: %d writes of 64 KiB, %d in flight: %.0f MiB/s, %.0f requests/s%n",
                requests, depth, requests * (blockBytes / 1048576.0) / writeSeconds, requests / writeSeconds);
        out.printf("  front-end: %d reads of 64 KiB, one at a time: %.0f MiB/s; %d checksum mismatches, %d error statuses%n",
                reads, reads * (blockBytes / 1048576.0) / readSeconds, mismatches, errors);
        out.printf("  image file: %d of %d written blocks have the checksum the driver wrote%n", onDisk, reads);
        if (mismatches != 0 || errors != 0 || onDisk != reads) {
            throw new IllegalStateException("block I/O check failed");
        }
    }

    private static int submitWrite(VirtioBlkDriver blk, int slot, int block, SplittableRandom random, byte[] noise,
                                   CRC32C crc, long[] crcByBlock, boolean[] written, int[] blockOfSlot) throws IOException {
        random.nextBytes(noise);
        crc.reset();
        crc.update(noise);
        crcByBlock[block] = crc.getValue();
        written[block] = true;
        blockOfSlot[slot] = block;
        MemorySegment.copy(noise, 0, blk.data(slot), ValueLayout.JAVA_BYTE, 0, noise.length);
        blk.submit(slot, VirtioBlkDriver.T_OUT, (long) block * noise.length / 512, noise.length, false);
        return 1;
    }

    private static int verifyImage(Path image, int blockBytes, long[] crcByBlock, boolean[] written) throws IOException {
        int good = 0;
        CRC32C crc = new CRC32C();
        ByteBuffer buffer = ByteBuffer.allocate(blockBytes);
        try (FileChannel f = FileChannel.open(image, StandardOpenOption.READ)) {
            for (int b = 0; b < written.length; b++) {
                if (!written[b]) {
                    continue;
                }
                buffer.clear();
                f.read(buffer, (long) b * blockBytes);
                crc.reset();
                crc.update(buffer.flip());
                if (crc.getValue() == crcByBlock[b]) {
                    good++;
                }
            }
        }
        return good;
    }
}
