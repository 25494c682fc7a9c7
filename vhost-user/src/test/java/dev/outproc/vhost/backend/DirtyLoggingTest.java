package dev.outproc.vhost.backend;

import dev.outproc.core.fd.Errno;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.DirtyLog;
import dev.outproc.core.memory.MemFd;
import dev.outproc.core.memory.SharedMapping;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.vhost.frontend.FrontendException;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.vhost.message.VhostUserFeature;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The dirty-log handler through the real dispatcher, with core's split driver queue as the guest:
 * SET_LOG_BASE needs LOG_SHMFD and a well-shaped log, a new log replaces the old one for every later write,
 * and a ring's used-ring writes are logged only when its SET_VRING_ADDR asked for it (VHOST_VRING_F_LOG).
 * Pages are compared exactly: a page too many is as wrong as a page missing.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class DirtyLoggingTest {
    private static final long MEMORY = 4L << 20;
    private static final int PAGE = (int) DirtyLog.DEFAULT_PAGE_SIZE;
    /** The bitmap covering guest memory up to its end, in whole u64 words. */
    private static final long LOG_BYTES =
            (DirtyLog.bitmapBytesFor(Rig.GUEST_BASE + MEMORY, DirtyLog.DEFAULT_PAGE_SIZE) + 7) & ~7L;
    private static final long FEATURES = VirtioFeature.VERSION_1.mask();

    @TempDir
    Path dir;

    private Path socket;
    private Rig.Served served;

    @BeforeEach
    void start() throws IOException {
        socket = dir.resolve("log.sock");
        served = Rig.serve(socket, RamBlkDevice.ram(1 << 20, 1));
    }

    @AfterEach
    void stop() throws InterruptedException {
        served.close();
    }

    /** A bitmap in shared memory, as the front-end keeps it, with a view that reads and clears it. */
    private record Log(OwnedFd fd, SharedMapping map, DirtyLog view) implements AutoCloseable {
        static Log create(String name) throws IOException {
            OwnedFd fd = MemFd.create(name, LOG_BYTES);
            SharedMapping map = SharedMapping.map(fd.get(), 0, LOG_BYTES, true);
            return new Log(fd, map, DirtyLog.over(map.segment(), PAGE));
        }

        TreeSet<Long> readAndClear() {
            TreeSet<Long> pages = new TreeSet<>();
            view.readAndClear(pages::add);
            return pages;
        }

        @Override
        public void close() {
            map.close();
            fd.close();
        }
    }

    private static void pages(TreeSet<Long> into, long gpa, long length) {
        for (long p = gpa / PAGE; p <= (gpa + length - 1) / PAGE; p++) {
            into.add(p);
        }
    }

    /** Reads {@code bytes} into slot 0 (the device writes the data and the status byte) and waits for it. */
    private static void read(Rig.Ring ring, int bytes) throws IOException {
        ring.submit(0, RamBlkDevice.T_IN, 8, bytes, true, false);
        ring.kick();
        assertEquals(0, ring.await(10_000));
        assertEquals(RamBlkDevice.S_OK, ring.status(0));
    }

    /** The pages a read into slot 0 writes, besides the ring's own. */
    private static TreeSet<Long> bufferPages(Rig.Ring ring, int bytes) {
        TreeSet<Long> expected = new TreeSet<>();
        pages(expected, ring.dataGpa(0), bytes);
        pages(expected, ring.statusGpa(0), 1);
        return expected;
    }

    @Test
    void setLogBaseShouldNeedLogShmfd() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY); Log log = Log.create("log-without-feature")) {
            rig.negotiate(FEATURES, true, ProtocolFeature.REPLY_ACK.mask());
            FrontendException refused = assertThrows(FrontendException.class,
                    () -> rig.fe.setLogBase(log.fd(), LOG_BYTES, 0));
            assertEquals(Errno.ENOTSUP, refused.status());
            assertEquals(FEATURES, rig.fe.getFeatures() & FEATURES, "still serving");
        }
    }

    @Test
    void aLogOfBadSizeOrOffsetShouldBeRefusedAndAGoodOneThenTaken() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY); Log log = Log.create("log-bad-shape")) {
            rig.negotiate(FEATURES, true, ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.LOG_SHMFD));
            rig.setMemTable();
            long[][] shapes = {{LOG_BYTES - 4, 0}, {0, 0}, {LOG_BYTES - 8, 4}, {-8, 0}};
            for (long[] shape : shapes) {
                FrontendException refused = assertThrows(FrontendException.class,
                        () -> rig.fe.setLogBase(log.fd(), shape[0], shape[1]), "size=" + shape[0] + " offset=" + shape[1]);
                assertEquals(Errno.EINVAL, refused.status(), "size=" + shape[0] + " offset=" + shape[1]);
            }
            rig.fe.setLogBase(log.fd(), LOG_BYTES, 0);
        }
    }

    @Test
    void usedRingWritesShouldBeLoggedOnlyWhenTheRingAsksForIt() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY); Log log = Log.create("log-used")) {
            long acked = rig.negotiate(FEATURES, true,
                    ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.LOG_SHMFD));
            rig.setMemTable();
            rig.fe.setLogBase(log.fd(), LOG_BYTES, 0);
            Rig.Ring ring = rig.ring(0, 16, acked, 1, 3 * PAGE);
            rig.program(ring, Rig.Setup.standard()); // no VHOST_VRING_F_LOG
            rig.fe.setFeatures(acked | VhostUserFeature.LOG_ALL.mask());
            int bytes = 2 * PAGE + 512;
            read(ring, bytes);
            // F_LOG_ALL cleared and acknowledged: every worker is between calls, the log is complete.
            rig.fe.setFeatures(acked);
            assertEquals(bufferPages(ring, bytes), log.readAndClear(), "buffers logged, the used ring not");

            int base = (int) rig.fe.getVringBase(0);
            rig.program(ring, Rig.Setup.standard().withLogUsed(), base);
            rig.fe.setFeatures(acked | VhostUserFeature.LOG_ALL.mask());
            read(ring, bytes);
            rig.fe.setFeatures(acked);
            TreeSet<Long> expected = bufferPages(ring, bytes);
            pages(expected, ring.dq.config().deviceAddr(), 6 + 8L * ring.dq.config().size());
            assertEquals(expected, log.readAndClear(), "with VHOST_VRING_F_LOG the used ring too");
        }
    }

    @Test
    void aNewLogBaseShouldReplaceTheOldOneForEveryLaterWrite() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY); Log first = Log.create("log-first");
             Log second = Log.create("log-second")) {
            long acked = rig.negotiate(FEATURES, true,
                    ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.LOG_SHMFD));
            rig.setMemTable();
            rig.fe.setLogBase(first.fd(), LOG_BYTES, 0);
            Rig.Ring ring = rig.ring(0, 16, acked, 1, PAGE);
            rig.program(ring, Rig.Setup.standard());
            rig.fe.setFeatures(acked | VhostUserFeature.LOG_ALL.mask());
            read(ring, 512);
            rig.fe.setLogBase(second.fd(), LOG_BYTES, 0);
            TreeSet<Long> expected = bufferPages(ring, 512);
            assertEquals(expected, first.readAndClear(), "the first log saw the first read");

            read(ring, 512);
            rig.fe.setFeatures(acked);
            assertEquals(expected, second.readAndClear(), "the second log saw the second read");
            assertEquals(new TreeSet<Long>(), first.readAndClear(), "the first log saw nothing after it was replaced");
        }
    }
}
