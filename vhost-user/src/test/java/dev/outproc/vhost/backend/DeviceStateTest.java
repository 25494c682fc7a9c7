package dev.outproc.vhost.backend;

import dev.outproc.core.fd.FdChannel;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtio.VirtioQueue;
import dev.outproc.vhost.frontend.FrontendException;
import dev.outproc.vhost.frontend.VhostUserFrontend;
import dev.outproc.vhost.message.ProtocolFeature;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The device-state handler (SET_DEVICE_STATE_FD, CHECK_DEVICE_STATE) through the real dispatcher, with
 * core's driver queue as the guest where a ring runs: offered only to migratable devices, refused while a
 * ring runs or another transfer does, and a device's failure reported by CHECK_DEVICE_STATE. (A full save and load of a block device is in {@link ProtocolFeatureMatrixTest}.)
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class DeviceStateTest {
    private static final long VERSION_1 = VirtioFeature.VERSION_1.mask();
    private static final long WANTED = ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.DEVICE_STATE);

    @TempDir
    Path dir;

    /** A migratable device whose state is a fixed text; its load accepts only that text. */
    private static final class Counter implements VirtioDevice {
        static final byte[] STATE = "counter=42".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        private final boolean migratable;

        Counter(boolean migratable) {
            this.migratable = migratable;
        }

        @Override
        public long features() {
            return VERSION_1;
        }

        @Override
        public int queueCount() {
            return 1;
        }

        @Override
        public void processQueue(VirtioQueue queue) throws IOException {
            queue.drain(chain -> 0);
        }

        @Override
        public boolean migratable() {
            return migratable;
        }

        @Override
        public void saveState(WritableByteChannel out) throws IOException {
            ByteBuffer b = ByteBuffer.wrap(STATE);
            while (b.hasRemaining()) {
                out.write(b);
            }
        }

        @Override
        public void loadState(ReadableByteChannel in) throws IOException {
            ByteBuffer b = ByteBuffer.allocate(64);
            while (in.read(b) >= 0) {
                if (!b.hasRemaining()) {
                    throw new IOException("state too long");
                }
            }
            if (!java.util.Arrays.equals(STATE, java.util.Arrays.copyOf(b.array(), b.position()))) {
                throw new IOException("not a counter state");
            }
        }
    }

    @Test
    void aDeviceThatIsNotMigratableShouldNotBeOfferedDeviceState() throws Exception {
        Path socket = dir.resolve("state.sock");
        try (Rig.Served served = serve(socket, new Counter(false));
             VhostUserFrontend fe = VhostUserFrontend.connect(socket)) {
            fe.setReplyTimeoutMillis(10_000);
            assertFalse(ProtocolFeature.DEVICE_STATE.isSetIn(fe.getProtocolFeatures()));
            fe.negotiate(VERSION_1, WANTED);
            assertFalse(fe.has(ProtocolFeature.DEVICE_STATE), "not acknowledged, as not offered");
            OwnedFd[] pipe = FdChannel.pipe();
            try (OwnedFd readEnd = pipe[0]; OwnedFd writeEnd = pipe[1]) {
                FrontendException refused = assertThrows(FrontendException.class, () -> fe.setDeviceStateFd(true, writeEnd));
                assertEquals(BackendException.UNSUPPORTED, refused.status());
            }
            assertEquals(1, fe.getQueueNum(), "still serving");
        }
    }

    @Test
    void aSavedStateShouldComeThroughThePipeAndLoadBack() throws Exception {
        Path socket = dir.resolve("state.sock");
        try (Rig.Served served = serve(socket, new Counter(true));
             VhostUserFrontend fe = VhostUserFrontend.connect(socket)) {
            fe.setReplyTimeoutMillis(10_000);
            fe.negotiate(VERSION_1, WANTED);
            assertTrue(fe.has(ProtocolFeature.DEVICE_STATE));
            OwnedFd[] pipe = FdChannel.pipe();
            fe.setDeviceStateFd(true, pipe[1]);
            pipe[1].close();
            byte[] saved;
            try (FdChannel in = FdChannel.of(pipe[0])) {
                ByteBuffer b = ByteBuffer.allocate(64);
                while (in.read(b) >= 0) {
                    // until EOF: the back-end closes its end when the device is done
                }
                saved = java.util.Arrays.copyOf(b.array(), b.position());
            }
            assertEquals(0, fe.checkDeviceState());
            assertEquals(new String(Counter.STATE), new String(saved));
            assertEquals(0, load(fe, saved), "the saved state loads");
            assertNotEquals(0, load(fe, "counter=7".getBytes()), "the device's refusal is reported");
        }
    }

    @Test
    void checkWithoutATransferShouldReportAnError() throws Exception {
        Path socket = dir.resolve("state.sock");
        try (Rig.Served served = serve(socket, new Counter(true));
             VhostUserFrontend fe = VhostUserFrontend.connect(socket)) {
            fe.setReplyTimeoutMillis(10_000);
            fe.negotiate(VERSION_1, WANTED);
            assertEquals(BackendException.INVALID, fe.checkDeviceState());
        }
    }

    @Test
    void aTransferShouldBeRefusedWhileARingRunsAndTakenOnceItStopped() throws Exception {
        Path socket = dir.resolve("state.sock");
        try (Rig.Served served = serve(socket, new Counter(true)); Rig rig = Rig.connect(socket, 2L << 20)) {
            long acked = rig.fe.negotiate(VERSION_1, WANTED);
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, acked, 1, 4096);
            rig.program(ring, Rig.Setup.standard());
            ring.submit(0, RamBlkDevice.T_GET_ID, 0, 20, true, false);
            ring.kick();
            assertEquals(0, ring.await(10_000), "the ring runs: the device completed the chain");
            OwnedFd[] pipe = FdChannel.pipe();
            try (FdChannel readEnd = FdChannel.of(pipe[0]); OwnedFd writeEnd = pipe[1]) {
                FrontendException refused = assertThrows(FrontendException.class,
                        () -> rig.fe.setDeviceStateFd(true, writeEnd), "ring 0 is started");
                assertEquals(BackendException.INVALID, refused.status());
                assertEquals(1, rig.fe.getVringBase(0), "stopped after its one chain");
                rig.fe.setDeviceStateFd(true, writeEnd);
                writeEnd.close();
                ByteBuffer saved = ByteBuffer.allocate(64);
                while (readEnd.read(saved) >= 0) {
                    // until EOF: the back-end closes its end when the device is done
                }
                assertEquals(new String(Counter.STATE), new String(saved.array(), 0, saved.position()));
            }
            assertEquals(0, rig.fe.checkDeviceState(), "the save ran once the ring stopped");
        }
    }

    @Test
    void aSecondTransferWhileTheFirstRunsShouldBeRefused() throws Exception {
        Path socket = dir.resolve("state.sock");
        try (Rig.Served served = serve(socket, new Counter(true));
             VhostUserFrontend fe = VhostUserFrontend.connect(socket)) {
            fe.setReplyTimeoutMillis(10_000);
            fe.negotiate(VERSION_1, WANTED);
            OwnedFd[] first = FdChannel.pipe();
            // A load reads until EOF: while the write end stays open, the first transfer runs.
            fe.setDeviceStateFd(false, first[0]);
            first[0].close();
            OwnedFd[] second = FdChannel.pipe();
            try (OwnedFd readEnd = second[0]; OwnedFd writeEnd = second[1]) {
                FrontendException refused = assertThrows(FrontendException.class,
                        () -> fe.setDeviceStateFd(true, writeEnd), "a transfer is already running");
                assertEquals(BackendException.INVALID, refused.status());
            }
            first[1].close(); // EOF with nothing written: the device refuses an empty state
            assertEquals(BackendException.IO_ERROR, fe.checkDeviceState());
        }
    }

    private static long load(VhostUserFrontend fe, byte[] state) throws IOException {
        OwnedFd[] pipe = FdChannel.pipe();
        fe.setDeviceStateFd(false, pipe[0]);
        pipe[0].close();
        try (FdChannel out = FdChannel.of(pipe[1])) {
            ByteBuffer b = ByteBuffer.wrap(state);
            while (b.hasRemaining()) {
                out.write(b);
            }
        }
        return fe.checkDeviceState();
    }

    private static Rig.Served serve(Path socket, VirtioDevice device) throws IOException {
        VhostUserServer server = VhostUserServer.listen(device, new VhostUserBackend.Options(1, false), socket);
        Thread t = Thread.ofPlatform().daemon(true).name("test-vhost-server").start(server::run);
        return new Rig.Served(server, t);
    }
}
