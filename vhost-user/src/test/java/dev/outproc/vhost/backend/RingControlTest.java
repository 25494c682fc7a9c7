package dev.outproc.vhost.backend;

import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.vhost.frontend.FrontendException;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.vhost.message.VhostUserFeature;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The ring-control handler (SET_VRING_NUM/ADDR/BASE/KICK/CALL/ERR/ENABLE, GET_VRING_BASE) driven through
 * the real dispatcher over a Unix socket, with core's driver-side queues as the guest.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RingControlTest {
    private static final long MEMORY = 2L << 20;
    private static final long VERSION_1 = VirtioFeature.VERSION_1.mask();
    private static final long PROTOCOL_BIT = VhostUserFeature.PROTOCOL_FEATURES.mask();
    private static final long REPLY_ACK = ProtocolFeature.REPLY_ACK.mask();

    @TempDir
    Path dir;

    private Path socket;
    private RamBlkDevice device;
    private Rig.Served served;
    private long seed;
    private SplittableRandom random;

    @BeforeEach
    void start() throws IOException {
        seed = System.nanoTime();
        random = new SplittableRandom(seed);
        socket = dir.resolve("rings.sock");
        device = RamBlkDevice.ram(1 << 20, 2);
        served = Rig.serve(socket, device);
    }

    @AfterEach
    void stop() throws InterruptedException {
        served.close();
    }

    private VhostUserBackend backend() {
        return served.server().backend();
    }

    /** Writes a random block and reads it back on ring {@code r}. */
    private void roundTrip(Rig.Ring r) throws IOException {
        byte[] data = new byte[512 * (1 + random.nextInt(8))];
        random.nextBytes(data);
        assertEquals(RamBlkDevice.S_OK, r.write(0, 8, data), "write, seed=" + seed);
        byte[] back = new byte[data.length];
        assertEquals(RamBlkDevice.S_OK, r.read(1, 8, back), "read, seed=" + seed);
        assertArrayEquals(data, back, "read back, seed=" + seed);
    }

    /**
     * QEMU 7.2's vhost-user-net order: the protocol features are exchanged, SET_VRING_ENABLE follows, and
     * SET_FEATURES comes later.
     */
    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void vringEnableBeforeSetFeaturesShouldBeAcceptedOnceProtocolFeaturesWereExchanged(boolean packed) throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long offered = rig.fe.getFeatures();
            assertTrue((offered & PROTOCOL_BIT) != 0, "F_PROTOCOL_FEATURES offered");
            rig.fe.setOwner();
            rig.fe.setProtocolFeatures(rig.fe.getProtocolFeatures() & REPLY_ACK);
            rig.fe.setVringEnable(0, false); // acknowledged with status 0, or this throws
            rig.fe.setVringEnable(0, true);
            assertTrue(backend().ring(0).isEnabled(), "ring enabled before SET_FEATURES");
            long acked = VERSION_1 | PROTOCOL_BIT | (packed ? VirtioFeature.RING_PACKED.mask() : 0);
            rig.fe.setFeatures(acked);
            assertTrue(backend().ring(0).isEnabled(), "SET_FEATURES with F_PROTOCOL_FEATURES keeps the ring enabled");
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, acked, 2, 4096);
            rig.program(ring, Rig.Setup.standard().withoutEnable());
            roundTrip(ring);
        }
    }

    @Test
    void vringEnableShouldBeRefusedWhenProtocolFeaturesWereNeverNegotiated() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            rig.fe.getFeatures();
            rig.fe.setOwner();
            // No REPLY_ACK, so no status to carry the refusal: the back-end closes the connection.
            rig.fe.setVringEnable(0, true);
            assertThrows(IOException.class, rig.fe::getFeatures, "connection closed after the refusal");
        }
    }

    @Test
    void vringEnableShouldBeRefusedAfterSetFeaturesWithoutTheBit() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            rig.fe.getFeatures();
            rig.fe.setOwner();
            rig.fe.setProtocolFeatures(REPLY_ACK);
            rig.fe.setFeatures(VERSION_1);
            FrontendException refused = assertThrows(FrontendException.class, () -> rig.fe.setVringEnable(0, true));
            assertTrue(refused.getMessage().contains("SET_VRING_ENABLE"), refused.getMessage());
        }
    }

    /** vhost-user.rst "Ring states": SET_FEATURES without F_PROTOCOL_FEATURES enables every ring. */
    @Test
    void setFeaturesWithoutTheBitShouldEnableRingsAnEarlyVringEnableDisabled() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            rig.fe.getFeatures();
            rig.fe.setOwner();
            rig.fe.setProtocolFeatures(REPLY_ACK);
            rig.fe.setVringEnable(0, false);
            rig.fe.setVringEnable(1, false);
            assertFalse(backend().ring(0).isEnabled());
            rig.fe.setFeatures(VERSION_1);
            assertTrue(backend().ring(0).isEnabled(), "ring 0 enabled by SET_FEATURES without the bit");
            assertTrue(backend().ring(1).isEnabled(), "ring 1 enabled by SET_FEATURES without the bit");
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, VERSION_1, 2, 4096);
            rig.program(ring, Rig.Setup.standard().withoutEnable());
            roundTrip(ring);
        }
    }

    @Test
    void aDisabledRingShouldKeepItsKickUntilEnabled() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.negotiate(VERSION_1, true, REPLY_ACK);
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, acked, 2, 4096);
            rig.program(ring, Rig.Setup.standard().withoutEnable());
            byte[] data = new byte[512];
            random.nextBytes(data);
            MemorySegment.copy(data, 0, ring.data(0), ValueLayout.JAVA_BYTE, 0, data.length);
            ring.submit(0, RamBlkDevice.T_OUT, 0, data.length, false, false);
            ring.kick();
            assertEquals(-1, ring.poll(200), "a disabled ring has no side effects");
            rig.fe.setVringEnable(0, true);
            assertEquals(0, ring.await(10_000), "the kick that came while disabled is served on enable");
            assertEquals(RamBlkDevice.S_OK, ring.status(0));
        }
    }

    @Test
    void getVringBaseShouldStopTheRingAndReportItsPosition() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.negotiate(VERSION_1, true, REPLY_ACK);
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, acked, 2, 4096);
            rig.program(ring, Rig.Setup.standard());
            roundTrip(ring);
            assertTrue(backend().ring(0).isStarted());
            assertEquals(2, rig.fe.getVringBase(0), "two requests consumed");
            assertFalse(backend().ring(0).isStarted(), "GET_VRING_BASE stops the ring");
            assertTrue(device.events.contains("stopped 0"), device.events.toString());
            // Restarted from where it stopped, the ring goes on serving.
            rig.program(ring, Rig.Setup.standard(), 2);
            roundTrip(ring);
        }
    }

    @Test
    void ringSettingsShouldBeRefusedWhileTheRingIsStarted() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.negotiate(VERSION_1, true, REPLY_ACK);
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, acked, 2, 4096);
            rig.program(ring, Rig.Setup.standard());
            assertThrows(FrontendException.class, () -> rig.fe.setVringNum(0, 32));
            assertThrows(FrontendException.class, () -> rig.fe.setVringBase(0, 3));
            roundTrip(ring);
        }
    }
}
