package dev.outproc.vhost.backend;

import dev.outproc.core.fd.FdChannel;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.vhost.message.ProtocolFeature;

import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A device-state transfer cut short: a source back-end saves its block device's state through the pipe of
 * SET_DEVICE_STATE_FD, the transfer to the destination stops after a fraction of it (the source's side of
 * the pipe closes early, as when the migration stream breaks). The destination must refuse the partial state
 * (CHECK_DEVICE_STATE reports an error), keep the data it had (nothing of the partial state applied), stay
 * usable for I/O, and accept a complete transfer of the same state afterwards.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class CutDeviceStateFaultTest {
    private static final long STORE = 1L << 20;

    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(ints = {0, 4, 8, 4096, 1 << 19, (1 << 20) + 7})
    void aPartialStateShouldBeRefusedAndTheDestinationStayUsable(int cutAfter) throws Exception {
        long seed = System.nanoTime();
        SplittableRandom random = new SplittableRandom(seed);
        RamBlkDevice source = RamBlkDevice.ram(STORE, 1);
        RamBlkDevice destination = RamBlkDevice.ram(STORE, 1);
        byte[] sourceData = new byte[(int) STORE];
        random.nextBytes(sourceData);
        source.store().copyFrom(java.lang.foreign.MemorySegment.ofArray(sourceData));
        byte[] destinationData = new byte[(int) STORE];
        random.nextBytes(destinationData);
        destination.store().copyFrom(java.lang.foreign.MemorySegment.ofArray(destinationData));
        Path sourceSocket = dir.resolve("source.sock");
        Path destinationSocket = dir.resolve("destination.sock");
        try (Rig.Served src = Rig.serve(sourceSocket, source); Rig.Served dst = Rig.serve(destinationSocket, destination)) {
            byte[] state = save(sourceSocket);
            assertEquals(8 + STORE, state.length, "seed=" + seed);
            try (Rig rig = Rig.connect(destinationSocket, 1L << 20)) {
                long acked = negotiate(rig);
                long status = load(rig, Arrays.copyOf(state, cutAfter));
                assertNotEquals(0, status, "a state cut after " + cutAfter + " bytes was accepted; seed=" + seed);
                assertArrayEquals(destinationData, destination.store().toArray(ValueLayout.JAVA_BYTE),
                        "the partial state changed the destination's data");
                // Still usable: I/O on a ring, then the complete state loads.
                rig.setMemTable();
                Rig.Ring ring = rig.ring(0, 16, acked, 2, 4096);
                rig.program(ring, Rig.Setup.standard());
                byte[] back = new byte[4096];
                assertEquals(RamBlkDevice.S_OK, ring.read(0, 16, back));
                assertArrayEquals(Arrays.copyOfRange(destinationData, 16 * 512, 16 * 512 + 4096), back);
            }
            try (Rig rig = Rig.connect(destinationSocket, 1L << 20)) {
                negotiate(rig);
                assertEquals(0, load(rig, state), "the complete state after the cut one");
                assertArrayEquals(sourceData, destination.store().toArray(ValueLayout.JAVA_BYTE));
            }
        }
    }

    private static long negotiate(Rig rig) throws Exception {
        long acked = rig.negotiate(VirtioFeature.VERSION_1.mask(), true,
                ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.DEVICE_STATE));
        assertTrue(rig.fe.has(ProtocolFeature.DEVICE_STATE));
        return acked;
    }

    private static byte[] save(Path socket) throws Exception {
        try (Rig rig = Rig.connect(socket, 1L << 20)) {
            negotiate(rig);
            OwnedFd[] pipe = FdChannel.pipe();
            rig.fe.setDeviceStateFd(true, pipe[1]);
            pipe[1].close();
            java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
            try (FdChannel in = FdChannel.of(pipe[0])) {
                ByteBuffer b = ByteBuffer.allocate(1 << 16);
                while (in.read(b) >= 0) {
                    out.write(b.array(), 0, b.position());
                    b.clear();
                }
            }
            assertEquals(0, rig.fe.checkDeviceState());
            return out.toByteArray();
        }
    }

    private static long load(Rig rig, byte[] state) throws Exception {
        OwnedFd[] pipe = FdChannel.pipe();
        rig.fe.setDeviceStateFd(false, pipe[0]);
        pipe[0].close();
        Thread writer = Thread.ofPlatform().start(() -> {
            try (FdChannel out = FdChannel.of(pipe[1])) {
                ByteBuffer b = ByteBuffer.wrap(state);
                while (b.hasRemaining()) {
                    out.write(b);
                }
            } catch (java.io.IOException e) {
                // the destination may stop reading a state it refused
            }
        });
        long status = rig.fe.checkDeviceState();
        writer.join(10_000);
        return status;
    }
}
