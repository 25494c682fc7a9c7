package dev.outproc.examples.demo;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.event.EventLoop;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.core.transport.PeerCredentials;
import dev.outproc.core.transport.ReceivedFds;
import dev.outproc.core.transport.UnixListener;

import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;

import static dev.outproc.core.memory.Layouts.LE_U64;

/**
 * Part one of the demo: the core layer alone. A "driver" thread owns memfd guest RAM and shares it,
 * with a kick and a call eventfd, over a real Unix socket with a "device" thread; the device maps the
 * memory, waits for kicks in the epoll event loop, checksums the guest bytes each request names, writes
 * the answer into guest memory and signals the call eventfd.
 */
final class SharedMemoryTour {
    private static final long GUEST_PHYS_BASE = 0x4000_0000L;
    private static final long FRONTEND_USER_BASE = 0x7f12_0000_0000L;
    private static final long MAILBOX_OFFSET = 0; // request: u64 offset, u64 length; answer: u64 crc at +16

    private final PrintStream out;
    private final long memoryBytes;
    private final int rounds;

    SharedMemoryTour(PrintStream out, long memoryBytes, int rounds) {
        this.out = out;
        this.memoryBytes = memoryBytes;
        this.rounds = rounds;
    }

    void run() throws Exception {
        Path dir = Files.createTempDirectory("outproc-demo");
        Path socketPath = dir.resolve("device.sock");
        out.println();
        out.println("[core] memfd guest memory, fd passing and eventfd notifications");
        try (UnixListener listener = UnixListener.bind(socketPath);
             GuestRegion ram = GuestRegion.allocate(GUEST_PHYS_BASE, memoryBytes, FRONTEND_USER_BASE);
             EventFd kick = EventFd.create();
             EventFd call = EventFd.createBlocking()) {
            out.printf("  driver: %d MiB of guest RAM in a memfd at GPA 0x%x (front-end address 0x%x)%n",
                    memoryBytes >> 20, ram.guestPhysAddr(), ram.userAddr());
            CompletableFuture<Long> device = CompletableFuture.supplyAsync(() -> serve(listener),
                    r -> Thread.ofPlatform().name("demo-device").start(r));
            try (MessageChannel channel = MessageChannel.connect(socketPath)) {
                MemorySegment table = Arena.ofAuto().allocate(32);
                table.set(LE_U64, 0, ram.guestPhysAddr());
                table.set(LE_U64, 8, ram.sizeBytes());
                table.set(LE_U64, 16, ram.userAddr());
                table.set(LE_U64, 24, 0);
                channel.write(table, List.of(ram.fd(), kick.owner(), call.owner()));
                out.printf("  driver: sent the region table with 3 fds (memfd, kick, call) over %s%n", socketPath);
                drive(ram.segment(), kick, call);
            }
            long handled = device.get(60, TimeUnit.SECONDS);
            out.printf("  device: handled %d kicks, then saw the driver hang up and unmapped its view%n", handled);
        } finally {
            Files.deleteIfExists(socketPath);
            Files.deleteIfExists(dir);
        }
    }

    private void drive(MemorySegment ram, EventFd kick, EventFd call) throws Exception {
        SplittableRandom random = new SplittableRandom(20261126L);
        byte[] noise = new byte[1 << 20];
        for (long at = 4096; at < ram.byteSize(); at += noise.length) {
            random.nextBytes(noise);
            MemorySegment.copy(noise, 0, ram, ValueLayout.JAVA_BYTE, at, (int) Math.min(noise.length, ram.byteSize() - at));
        }
        CRC32C crc = new CRC32C();
        long start = System.nanoTime();
        int mismatches = 0;
        long bytes = 0;
        for (int i = 0; i < rounds; i++) {
            long length = 1 + random.nextLong(64 * 1024);
            long offset = 4096 + random.nextLong(ram.byteSize() - 4096 - length);
            ram.set(LE_U64, MAILBOX_OFFSET, offset);
            ram.set(LE_U64, MAILBOX_OFFSET + 8, length);
            kick.signal();
            call.await();
            crc.reset();
            crc.update(ram.asSlice(offset, length).asByteBuffer());
            if (ram.get(LE_U64, MAILBOX_OFFSET + 16) != crc.getValue()) {
                mismatches++;
            }
            bytes += length;
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        out.printf("  driver: %d kick/call round trips, %d MiB checksummed by the device in place, %d mismatches%n",
                rounds, bytes >> 20, mismatches);
        out.printf("  driver: %.0f round trips/s (each: eventfd write, epoll wake-up, CRC32C over guest memory, eventfd write)%n",
                rounds / seconds);
        if (mismatches != 0) {
            throw new IllegalStateException(mismatches + " checksums differ");
        }
    }

    private long serve(UnixListener listener) {
        try (MessageChannel channel = listener.accept();
             EventLoop loop = EventLoop.start("demo-device-loop")) {
            PeerCredentials peer = channel.peerCredentials();
            MemorySegment table = Arena.ofAuto().allocate(32);
            GuestRegion region;
            EventFd kick;
            EventFd call;
            try (ReceivedFds fds = channel.readFully(table, 3)) {
                if (fds.count() != 3) {
                    throw new IllegalStateException("expected 3 fds, got " + fds.count());
                }
                try (OwnedFd memfd = fds.take(0)) {
                    region = GuestRegion.map(table.get(LE_U64, 0), table.get(LE_U64, 8), table.get(LE_U64, 16),
                            table.get(LE_U64, 24), memfd, false);
                }
                kick = EventFd.adopt(fds.take(1));
                call = EventFd.adopt(fds.take(2));
            }
            GuestMemory memory = GuestMemory.of(List.of(region));
            out.printf("  device: peer pid %d uid %d; mapped %s%n", peer.pid(), peer.uid(), region);
            long[] handled = new long[1];
            CRC32C crc = new CRC32C();
            loop.add(kick.owner(), events -> {
                kick.drain();
                MemorySegment mailbox = memory.slice(GUEST_PHYS_BASE + MAILBOX_OFFSET, 24);
                long offset = mailbox.get(LE_U64, 0);
                long length = mailbox.get(LE_U64, 8);
                crc.reset();
                crc.update(memory.slice(Math.addExact(GUEST_PHYS_BASE, offset), length).asByteBuffer());
                mailbox.set(LE_U64, 16, crc.getValue());
                handled[0]++;
                call.signal();
            });
            try {
                channel.readFully(Arena.ofAuto().allocate(1)); // returns when the driver hangs up
            } catch (java.io.IOException expected) {
                // peer closed: the demo is over
            }
            loop.awaitOnLoop(() -> { });
            loop.close();
            kick.close();
            call.close();
            region.close();
            return handled[0];
        } catch (Exception e) {
            throw new IllegalStateException("device failed: " + e.getMessage(), e);
        }
    }
}
