package dev.outproc.vhost.backend;

import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.vhost.message.ProtocolFeature;

import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A guest that keeps the device busy while the front-end disconnects: a guest thread submits and kicks
 * write after write on a running ring (and goes on kicking after the hang-up, as a guest does not know),
 * and the front-end's connection closes in the middle of it. The back-end must stop the ring on its
 * worker, drop the connection's memory and fds, and serve the next front-end; this process ends holding
 * what it held before. Five rounds per ring format.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class BusyGuestDisconnectFaultTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "packed ring: {0}")
    @ValueSource(booleans = {false, true})
    void aDisconnectUnderLoadShouldCostOnlyThatConnection(boolean packed) throws Exception {
        Path socket = dir.resolve("busy.sock");
        try (Rig.Served served = Rig.serve(socket, RamBlkDevice.ram(1 << 20, 1))) {
            CutMessageFaultTest.useOnce(socket);
            ProcessResources before = ProcessResources.settle(ProcessResources.now());
            for (int round = 0; round < 5; round++) {
                try (Rig rig = Rig.connect(socket, 1L << 20)) {
                    long acked = rig.negotiate(VirtioFeature.VERSION_1.mask() | (packed ? VirtioFeature.RING_PACKED.mask() : 0),
                            true, ProtocolFeature.REPLY_ACK.mask());
                    assertEquals(packed, (acked & VirtioFeature.RING_PACKED.mask()) != 0);
                    rig.setMemTable();
                    Rig.Ring ring = rig.ring(0, 64, acked, 1, 4096);
                    rig.program(ring, Rig.Setup.standard());
                    AtomicLong completed = new AtomicLong();
                    AtomicReference<Throwable> guestFailure = new AtomicReference<>();
                    Thread guest = Thread.ofPlatform().name("busy-guest").start(() -> {
                        try {
                            while (true) {
                                ring.submit(0, RamBlkDevice.T_OUT, 8, 4096, false, false);
                                ring.kick();
                                if (ring.poll(300) < 0) {
                                    // The back-end is gone: kick a few more times, as a guest would, then stop.
                                    for (int i = 0; i < 10; i++) {
                                        ring.kick.trySignal();
                                    }
                                    return;
                                }
                                completed.incrementAndGet();
                            }
                        } catch (Throwable t) {
                            guestFailure.set(t);
                        }
                    });
                    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                    while (completed.get() < 50 + 20L * round && System.nanoTime() < deadline) {
                        Thread.sleep(1);
                    }
                    assertTrue(completed.get() >= 50, "the guest was busy: " + completed.get() + " writes");
                    rig.fe.close(); // the front-end goes away under load
                    guest.join(20_000);
                    assertFalse(guest.isAlive(), "the guest saw its device stop");
                    assertNull(guestFailure.get(), () -> "guest failed: " + guestFailure.get());
                }
                CutMessageFaultTest.useOnce(socket);
            }
            ProcessResources after = ProcessResources.settle(before);
            System.out.println("BusyGuestDisconnectFaultTest packed=" + packed + " before: " + before + "; after 5 disconnects: "
                    + after);
            assertTrue(after.fds() <= before.fds(), "open fds " + before.fds() + " -> " + after.fds() + " (an fd open before may close meanwhile; more is a leak): " + TestFds.snapshot());
            assertTrue(after.threads() <= before.threads(), "threads " + before.threads() + " -> " + after.threads());
            assertTrue(after.memfdMappings() <= before.memfdMappings(), "memfd mappings " + before.memfdMappings() + " -> " + after.memfdMappings());
        }
    }
}
