package dev.outproc.vhost.backend;

import dev.outproc.core.fd.Errno;
import dev.outproc.core.memory.Layouts;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtio.VirtioQueue;
import dev.outproc.vhost.connection.VhostUserMessage;
import dev.outproc.vhost.connection.VhostUserMessageWriter;
import dev.outproc.vhost.frontend.FrontendException;
import dev.outproc.vhost.frontend.VhostUserFrontend;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.vhost.message.U64Payload;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The configuration handler through the real dispatcher: GET_CONFIG and SET_CONFIG on a device's
 * configuration space (CONFIG), and NET_SET_MTU (MTU) and SEND_RARP (RARP) handed to the device, each with
 * the device's refusal coming back as a REPLY_ACK status on a connection that keeps serving.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ConfigAccessTest {
    /** The status {@link ConfigAccess} answers for a request the device or the space refuses. */
    private static final long EINVAL = Errno.EINVAL;
    /** The status for a request whose protocol feature was not negotiated. */
    private static final long ENOTSUP = Errno.ENOTSUP;
    private static final long ALL_PROTOCOL = ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.CONFIG,
            ProtocolFeature.MTU, ProtocolFeature.RARP);

    /**
     * A net-like device with an 8-byte writable configuration space: it refuses config writes that start
     * with 0xff, MTUs above 9000, and a multicast MAC in SEND_RARP.
     */
    static final class ConfigurableDevice implements VhostUserDevice {
        final byte[] config = {1, 2, 3, 4, 5, 6, 7, 8};
        volatile int mtu;
        volatile byte[] rarpMac;

        @Override
        public long features() {
            return VirtioFeature.VERSION_1.mask();
        }

        @Override
        public int queueCount() {
            return 1;
        }

        @Override
        public void processQueue(VirtioQueue queue) {
            // No ring traffic in these tests.
        }

        @Override
        public long protocolFeatures() {
            return ProtocolFeature.maskOf(ProtocolFeature.MTU, ProtocolFeature.RARP);
        }

        @Override
        public int configSize() {
            return config.length;
        }

        @Override
        public synchronized void readConfig(int offset, MemorySegment destination) {
            MemorySegment.copy(config, offset, destination, ValueLayout.JAVA_BYTE, 0, (int) destination.byteSize());
        }

        @Override
        public synchronized void writeConfig(int offset, MemorySegment source) throws IOException {
            if (source.byteSize() > 0 && source.get(ValueLayout.JAVA_BYTE, 0) == (byte) 0xff) {
                throw new IOException("refused config write at " + offset);
            }
            MemorySegment.copy(source, ValueLayout.JAVA_BYTE, 0, config, offset, (int) source.byteSize());
        }

        @Override
        public void setMtu(int mtu) throws IOException {
            if (mtu > 9000) {
                throw new IOException("MTU " + mtu + " too large");
            }
            this.mtu = mtu;
        }

        @Override
        public void sendRarp(byte[] mac) throws IOException {
            if ((mac[0] & 1) != 0) {
                throw new IOException("multicast MAC");
            }
            rarpMac = mac.clone();
        }
    }

    @TempDir
    Path dir;

    private ConfigurableDevice device;
    private Rig.Served served;
    private VhostUserFrontend fe;

    @BeforeEach
    void start() throws IOException {
        device = new ConfigurableDevice();
        Path socket = dir.resolve("config.sock");
        served = Rig.serve(socket, device);
        fe = VhostUserFrontend.connect(socket);
        fe.setReplyTimeoutMillis(10_000);
    }

    @AfterEach
    void stop() throws InterruptedException {
        fe.close();
        served.close();
    }

    /** Sends a u64-payload request with NEED_REPLY and returns the REPLY_ACK status. */
    private long sendU64(FrontendRequest request, MemorySegment value) throws IOException {
        VhostUserMessageWriter writer = fe.writer();
        MemorySegment.copy(value, 0, writer.buffer(), VhostUserMessageWriter.PAYLOAD_OFFSET, U64Payload.ENCODED_LENGTH);
        writer.sendRequest(request, true, U64Payload.ENCODED_LENGTH, List.of());
        try (VhostUserMessage reply = fe.reader().read()) {
            assertEquals(request, reply.request(), "the reply answers " + request);
            return reply.payloadU64();
        }
    }

    private long setMtu(long mtu) throws IOException {
        MemorySegment value = MemorySegment.ofArray(new byte[U64Payload.ENCODED_LENGTH]);
        value.set(Layouts.LE_U64, 0, mtu);
        return sendU64(FrontendRequest.NET_SET_MTU, value);
    }

    private long sendRarp(byte[] mac) throws IOException {
        byte[] payload = new byte[U64Payload.ENCODED_LENGTH];
        System.arraycopy(mac, 0, payload, 0, mac.length);
        return sendU64(FrontendRequest.SEND_RARP, MemorySegment.ofArray(payload));
    }

    @Test
    void getConfigShouldReadTheDevicesBytesAndAnswerEmptyPastTheSpace() throws Exception {
        fe.negotiate(VirtioFeature.VERSION_1.mask(), ALL_PROTOCOL);
        assertArrayEquals(new byte[] {1, 2, 3, 4, 5, 6, 7, 8}, fe.getConfig(0, 8));
        assertArrayEquals(new byte[] {6, 7}, fe.getConfig(5, 2));
        FrontendException past = assertThrows(FrontendException.class, () -> fe.getConfig(4, 8),
                "a read reaching past the 8-byte space gets an empty answer");
        assertEquals(0, past.status(), "GET_CONFIG has no status: the refusal is the empty payload");
        assertArrayEquals(new byte[] {8}, fe.getConfig(7, 1), "still serving");
    }

    @Test
    void setConfigShouldReachTheDeviceAndItsRefusalBecomeAStatus() throws Exception {
        fe.negotiate(VirtioFeature.VERSION_1.mask(), ALL_PROTOCOL);
        fe.setConfig(2, new byte[] {42, 43});
        assertArrayEquals(new byte[] {1, 2, 42, 43, 5, 6, 7, 8}, fe.getConfig(0, 8));
        FrontendException refused = assertThrows(FrontendException.class,
                () -> fe.setConfig(0, new byte[] {(byte) 0xff}), "the device refuses this write");
        assertEquals(EINVAL, refused.status());
        assertArrayEquals(new byte[] {1, 2, 42, 43, 5, 6, 7, 8}, fe.getConfig(0, 8), "nothing written, still serving");
    }

    @Test
    void setConfigPastTheSpaceShouldBeRefusedBeforeTheDeviceSeesIt() throws Exception {
        fe.negotiate(VirtioFeature.VERSION_1.mask(), ALL_PROTOCOL);
        FrontendException refused = assertThrows(FrontendException.class, () -> fe.setConfig(6, new byte[] {9, 9, 9}));
        assertEquals(EINVAL, refused.status());
        assertArrayEquals(new byte[] {1, 2, 3, 4, 5, 6, 7, 8}, fe.getConfig(0, 8), "the space is unchanged");
    }

    @Test
    void netSetMtuShouldReachTheDeviceAndItsRefusalBecomeAStatus() throws Exception {
        fe.negotiate(VirtioFeature.VERSION_1.mask(), ALL_PROTOCOL);
        assertEquals(0, setMtu(1500));
        assertEquals(1500, device.mtu);
        assertEquals(EINVAL, setMtu(65_535), "the device refuses the MTU");
        assertEquals(1500, device.mtu, "the refused MTU did not replace the last one");
        assertEquals(0, setMtu(9000), "still serving");
        assertEquals(9000, device.mtu);
    }

    @Test
    void sendRarpShouldHandTheGuestMacToTheDevice() throws Exception {
        fe.negotiate(VirtioFeature.VERSION_1.mask(), ALL_PROTOCOL);
        byte[] mac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
        assertEquals(0, sendRarp(mac));
        assertArrayEquals(mac, device.rarpMac, "the first six bytes of the u64, in wire order");
        assertEquals(EINVAL, sendRarp(new byte[] {0x01, 0, 0x5e, 0, 0, 1}), "the device refuses a multicast MAC");
        assertArrayEquals(mac, device.rarpMac);
    }

    @Test
    void mtuRarpAndSetConfigShouldBeRefusedWhenTheirFeaturesWereNotNegotiated() throws Exception {
        fe.negotiate(VirtioFeature.VERSION_1.mask(), ProtocolFeature.REPLY_ACK.mask());
        assertEquals(ENOTSUP, setMtu(1500));
        assertEquals(ENOTSUP, sendRarp(new byte[] {0x52, 0x54, 0, 0, 0, 1}));
        FrontendException config = assertThrows(FrontendException.class, () -> fe.setConfig(0, new byte[] {7}));
        assertEquals(ENOTSUP, config.status());
        assertEquals(0, device.mtu, "the device saw no MTU");
        assertNull(device.rarpMac, "the device saw no RARP");
        assertEquals(1, device.config[0], "the device saw no config write");
    }
}
