package dev.outproc.vhost.backend;

import dev.outproc.vhost.message.VhostUserFeature;
import dev.outproc.core.event.EventFd;
import dev.outproc.core.fd.Errno;
import dev.outproc.core.fd.NativeException;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.memory.MemFd;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.core.transport.PeerClosedException;
import dev.outproc.core.transport.TransportException;
import dev.outproc.core.virtqueue.QueueConfig;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.vhost.message.VhostUserHeader;
import dev.outproc.core.virtio.VirtioFeature;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

import static dev.outproc.core.memory.Layouts.LE_U16;
import static dev.outproc.core.memory.Layouts.LE_U32;
import static dev.outproc.core.memory.Layouts.LE_U64;
import static dev.outproc.core.memory.Layouts.NATIVE_U16;
import static dev.outproc.core.memory.Layouts.NATIVE_U32;
import static dev.outproc.core.memory.Layouts.NATIVE_U64;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A hostile front-end against the back-end, one test per attack (issue "Proof"). Every attack must end
 * in an error reply (REPLY_ACK status non-zero) or a clean close of that connection only. After each
 * test, {@link #theBackEndShouldServeTheNextFrontEnd()} checks that the same back-end serves a new
 * front-end with real, checksummed I/O, writes nothing outside the guest's buffers, and that the
 * process's open-fd count is back where it was before the attack.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class HostileFrontendTest {
    private static final long MEMORY = 4L << 20;
    private static final int VERSION = (int) VhostUserHeader.VERSION;
    private static final int NEED_REPLY = (int) (VhostUserHeader.VERSION | VhostUserHeader.NEED_REPLY_FLAG);

    @TempDir
    Path dir;

    private Path socket;
    private RamBlkDevice device;
    private Rig.Served served;
    private int fdBaseline;
    private Map<Integer, String> fdSnapshot;
    private long seed;

    @BeforeEach
    void start(TestInfo info) throws Exception {
        seed = System.nanoTime();
        socket = dir.resolve("hostile.sock");
        device = RamBlkDevice.ram(1 << 20, 1);
        served = Rig.serve(socket, device);
        // Warm up (class loading, lazily opened files) before taking the fd baseline.
        cleanSession(new SplittableRandom(seed));
        // The server thread releases the connection after the front-end left: wait for it, so that the
        // baseline does not count fds that are about to close.
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (served.server().backend().isServing() && System.nanoTime() - deadline < 0) {
            LockSupport.parkNanos(1_000_000);
        }
        fdBaseline = TestFds.stable();
        fdSnapshot = TestFds.snapshot();
    }

    @AfterEach
    void theBackEndShouldServeTheNextFrontEnd() throws Exception {
        try {
            cleanSession(new SplittableRandom(seed + 1));
            int now = TestFds.settle(fdBaseline);
            assertEquals(fdBaseline, now, "open fds after the attack and a clean session; new: " + TestFds.newSince(fdSnapshot));
        } finally {
            served.close();
        }
    }

    /**
     * A well-behaved front-end: writes random blocks, reads them back, and checks that the device wrote
     * only into the buffers it was given (used ring, read data, status bytes).
     */
    private void cleanSession(SplittableRandom random) throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long features = VirtioFeature.maskOf(VirtioFeature.VERSION_1, VirtioFeature.EVENT_IDX, VirtioFeature.INDIRECT_DESC);
            rig.fe.negotiate(features, ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK));
            rig.setMemTable();
            MemorySegment guest = rig.regions.get(0).segment();
            fillPattern(guest, random);
            Rig.Ring ring = rig.ring(0, 16, rig.fe.features(), 4, 16 * 1024);
            rig.program(ring, Rig.Setup.standard());
            for (int round = 0; round < 8; round++) {
                int bytes = 512 * (1 + random.nextInt(32));
                long sector = random.nextInt(1024);
                byte[] data = new byte[bytes];
                random.nextBytes(data);
                assertEquals(RamBlkDevice.S_OK, ring.write(0, sector, data), "seed=" + seed);
                // Guard: the read may change only its data bytes, its status byte and the used ring.
                ring.submit(1, RamBlkDevice.T_IN, sector, bytes, true, round % 2 == 0);
                ring.dq.publish(); // the driver's own write of avail idx comes before the snapshot
                byte[] before = guest.toArray(ValueLayout.JAVA_BYTE);
                ring.kick();
                ring.await(10_000);
                byte[] after = guest.toArray(ValueLayout.JAVA_BYTE);
                QueueConfig c = ring.dq.config();
                List<long[]> allowed = List.of(
                        new long[] {c.deviceAddr(), 6 + 8L * c.size() + 2},
                        new long[] {ring.dataGpa(1), bytes},
                        new long[] {ring.statusGpa(1), 1});
                assertOnlyChanged(before, after, allowed, "round " + round + " seed=" + seed);
                byte[] back = new byte[bytes];
                MemorySegment.copy(ring.data(1), ValueLayout.JAVA_BYTE, 0, back, 0, bytes);
                assertEquals(RamBlkDevice.S_OK, ring.status(1));
                assertArrayEquals(data, back, "read back, round " + round + " seed=" + seed);
            }
        }
    }

    private static void fillPattern(MemorySegment guest, SplittableRandom random) {
        byte[] pattern = new byte[4096];
        random.nextBytes(pattern);
        for (long at = 0; at < guest.byteSize(); at += pattern.length) {
            MemorySegment.copy(pattern, 0, guest, ValueLayout.JAVA_BYTE, at, pattern.length);
        }
    }

    private static void assertOnlyChanged(byte[] before, byte[] after, List<long[]> allowedGpaRanges, String context) {
        for (int i = 0; i < before.length; i++) {
            if (before[i] != after[i]) {
                long gpa = Rig.GUEST_BASE + i;
                boolean ok = false;
                for (long[] r : allowedGpaRanges) {
                    ok |= gpa >= r[0] && gpa < r[0] + r[1];
                }
                if (!ok) {
                    fail("the back-end wrote guest memory outside the buffers it was given, gpa=0x" + Long.toHexString(gpa)
                            + ", " + context);
                }
            }
        }
    }

    // ---- helpers for the hostile side ----

    /** A negotiated front-end with REPLY_ACK (or without). */
    private Rig hostile(boolean replyAck, long features) throws IOException {
        Rig rig = Rig.connect(socket, MEMORY);
        rig.fe.negotiate(features, replyAck ? ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK) : 0);
        return rig;
    }

    private Rig hostile() throws IOException {
        return hostile(true, VirtioFeature.maskOf(VirtioFeature.VERSION_1, VirtioFeature.INDIRECT_DESC));
    }

    private record RawReply(long request, long flags, MemorySegment payload) {
        long u64() {
            return payload.get(NATIVE_U64, 0);
        }
    }

    /** Reads one reply as raw bytes (the request number may be one no table knows). */
    private static RawReply readRaw(MessageChannel ch) throws IOException {
        MemorySegment header = Arena.ofAuto().allocate(12);
        ch.readFully(header);
        long size = Integer.toUnsignedLong(header.get(NATIVE_U32, 8));
        assertTrue(size <= 4096, "reply size " + size);
        MemorySegment payload = Arena.ofAuto().allocate(Math.max(1, size)).asSlice(0, size);
        if (size > 0) {
            ch.readFully(payload);
        }
        return new RawReply(Integer.toUnsignedLong(header.get(NATIVE_U32, 0)), Integer.toUnsignedLong(header.get(NATIVE_U32, 4)), payload);
    }

    private static void assertErrorAck(MessageChannel ch, long request) throws IOException {
        RawReply r = readRaw(ch);
        assertEquals(request, r.request(), "the reply answers the request");
        assertEquals(VhostUserHeader.VERSION | VhostUserHeader.REPLY_FLAG, r.flags(), "reply flags");
        assertEquals(8, r.payload().byteSize(), "a REPLY_ACK payload is a u64");
        assertNotEquals(0L, r.u64(), "REPLY_ACK status must be non-zero for a refused request");
    }

    private static void assertClosed(MessageChannel ch) throws IOException {
        ch.setReadTimeoutMillis(10_000);
        MemorySegment one = Arena.ofAuto().allocate(1);
        try {
            ch.readFully(one);
            fail("the back-end answered instead of closing, first byte=" + one.get(ValueLayout.JAVA_BYTE, 0));
        } catch (PeerClosedException expected) {
            assertEquals(0, expected.bytesRead());
        } catch (NativeException e) {
            // A close with our unread bytes still queued on the back-end's side resets the connection.
            assertEquals(Errno.ECONNRESET, e.errno(), "the connection ended with " + e.getMessage());
        } catch (TransportException e) {
            fail("the back-end neither answered nor closed: " + e.getMessage());
        }
    }

    /** The connection still works: GET_FEATURES answers with the offered features. */
    private static void assertStillServing(Rig rig) throws IOException {
        assertTrue((rig.fe.getFeatures() & VirtioFeature.VERSION_1.mask()) != 0, "GET_FEATURES still answers");
    }

    private static MemorySegment body(Rig rig) {
        return rig.fe.writer().buffer().asSlice(12);
    }

    // ---- framing attacks ----

    @Test
    void garbageBytesShouldCloseTheConnection() throws Exception {
        try (Rig rig = hostile()) {
            byte[] junk = new byte[64];
            new SplittableRandom(seed).nextBytes(junk);
            junk[4] = (byte) 0xfe; // flags: version 2 and reserved bits, whatever the rest is
            junk[7] = (byte) 0xff;
            MemorySegment raw = Arena.ofAuto().allocate(junk.length);
            MemorySegment.copy(junk, 0, raw, ValueLayout.JAVA_BYTE, 0, junk.length);
            rig.fe.channel().write(raw);
            assertClosed(rig.fe.channel());
        }
    }

    @Test
    void aHeaderThatClaimsAHugePayloadShouldCloseTheConnection() throws Exception {
        try (Rig rig = hostile()) {
            body(rig).set(NATIVE_U64, 0, 0);
            // The header says 2 GiB, 8 bytes follow: the back-end must not wait for or allocate them.
            MemorySegment raw = Arena.ofAuto().allocate(20);
            raw.set(NATIVE_U32, 0, FrontendRequest.SET_FEATURES.code());
            raw.set(NATIVE_U32, 4, NEED_REPLY);
            raw.set(NATIVE_U32, 8, 0x7fff_fff0);
            rig.fe.channel().write(raw);
            assertClosed(rig.fe.channel());
        }
    }

    @Test
    void aHeaderThatSwallowsTheNextMessageShouldGetAnErrorAndStayInStep() throws Exception {
        try (Rig rig = hostile()) {
            // SET_FEATURES claims 20 bytes: its 8 and the 12-byte header of a GET_FEATURES that follows.
            MemorySegment raw = Arena.ofAuto().allocate(32);
            raw.set(NATIVE_U32, 0, FrontendRequest.SET_FEATURES.code());
            raw.set(NATIVE_U32, 4, NEED_REPLY);
            raw.set(NATIVE_U32, 8, 20);
            raw.set(NATIVE_U64, 12, VirtioFeature.VERSION_1.mask());
            raw.set(NATIVE_U32, 20, FrontendRequest.GET_FEATURES.code());
            raw.set(NATIVE_U32, 24, VERSION);
            raw.set(NATIVE_U32, 28, 0);
            rig.fe.channel().write(raw);
            assertErrorAck(rig.fe.channel(), FrontendRequest.SET_FEATURES.code());
            assertStillServing(rig);
        }
    }

    @Test
    void versionZeroShouldCloseTheConnection() throws Exception {
        try (Rig rig = hostile()) {
            body(rig).set(NATIVE_U64, 0, 0);
            rig.fe.writer().sendUnchecked(FrontendRequest.GET_FEATURES.code(), 0, 0, List.of());
            assertClosed(rig.fe.channel());
        }
    }

    @Test
    void reservedFlagBitsShouldCloseTheConnection() throws Exception {
        try (Rig rig = hostile()) {
            rig.fe.writer().sendUnchecked(FrontendRequest.GET_FEATURES.code(), VhostUserHeader.VERSION | (1L << 17), 0, List.of());
            assertClosed(rig.fe.channel());
        }
    }

    @Test
    void anUnknownRequestWithNeedReplyShouldGetAnErrorAck() throws Exception {
        try (Rig rig = hostile()) {
            body(rig).set(NATIVE_U64, 0, 0x1234);
            rig.fe.writer().sendUnchecked(999, NEED_REPLY, 8, List.of());
            assertErrorAck(rig.fe.channel(), 999);
            assertStillServing(rig);
        }
    }

    @Test
    void fdsOnARequestThatTakesNoneShouldGetAnErrorAck() throws Exception {
        try (Rig rig = hostile(); EventFd stray = EventFd.create(); OwnedFd memfd = MemFd.create("stray", 4096)) {
            body(rig).set(NATIVE_U64, 0, VirtioFeature.VERSION_1.mask() | VhostUserFeature.PROTOCOL_FEATURES.mask());
            rig.fe.writer().sendUnchecked(FrontendRequest.SET_FEATURES.code(), NEED_REPLY, 8, List.of(stray.owner(), memfd));
            assertErrorAck(rig.fe.channel(), FrontendRequest.SET_FEATURES.code());
            assertStillServing(rig);
        }
    }

    @Test
    void setMemTableWithTooManyRegionsShouldBeRefused() throws Exception {
        try (Rig rig = hostile()) {
            List<OwnedFd> fds = new ArrayList<>();
            try {
                MemorySegment b = body(rig);
                b.set(NATIVE_U32, 0, 9);
                b.set(NATIVE_U32, 4, 0);
                for (int i = 0; i < 9; i++) {
                    fds.add(MemFd.create("region" + i, 1 << 16));
                    long at = 8 + 32L * i;
                    b.set(NATIVE_U64, at, 0x1000_0000L * (i + 1));
                    b.set(NATIVE_U64, at + 8, 1 << 16);
                    b.set(NATIVE_U64, at + 16, 0x7000_0000_0000L + 0x1000_0000L * i);
                    b.set(NATIVE_U64, at + 24, 0);
                }
                rig.fe.writer().sendUnchecked(FrontendRequest.SET_MEM_TABLE.code(), NEED_REPLY, 8 + 32 * 9, fds);
            } finally {
                OwnedFd.closeAll(fds);
            }
            assertErrorAck(rig.fe.channel(), FrontendRequest.SET_MEM_TABLE.code());
            assertStillServing(rig);
            assertEquals(0, served.server().backend().memory().regionCount(), "no region was mapped");
        }
    }

    @Test
    void setMemTableWithARegionThatWrapsShouldBeRefused() throws Exception {
        try (Rig rig = hostile(); OwnedFd memfd = MemFd.create("wrap", 1 << 16)) {
            long[][] cases = {
                    {0xffff_ffff_ffff_f000L, 0x2000, 0x7000_0000_0000L}, // gpa + size wraps
                    {0x1000_0000L, 0x2000, 0xffff_ffff_ffff_f000L},       // user address + size wraps
                    {0x1000_0000L, 0x8000_0000_0000_0000L, 0x1000L},      // size beyond any mapping
            };
            for (long[] c : cases) {
                MemorySegment b = body(rig);
                b.set(NATIVE_U32, 0, 1);
                b.set(NATIVE_U32, 4, 0);
                b.set(NATIVE_U64, 8, c[0]);
                b.set(NATIVE_U64, 16, c[1]);
                b.set(NATIVE_U64, 24, c[2]);
                b.set(NATIVE_U64, 32, 0);
                rig.fe.writer().sendUnchecked(FrontendRequest.SET_MEM_TABLE.code(), NEED_REPLY, 40, List.of(memfd));
                assertErrorAck(rig.fe.channel(), FrontendRequest.SET_MEM_TABLE.code());
            }
            assertStillServing(rig);
            assertEquals(0, served.server().backend().memory().regionCount(), "no region was mapped");
        }
    }

    /**
     * Shared memory that claims more bytes than its fd holds: touching the pages past the end of the file
     * would raise SIGBUS in the back-end. Each of the four requests that map front-end memory must refuse.
     */
    @Test
    void sharedMemoryLargerThanItsFdShouldBeRefused() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY); OwnedFd small = MemFd.create("small", 64 * 1024)) {
            rig.fe.negotiate(VirtioFeature.VERSION_1.mask(), ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK,
                    ProtocolFeature.CONFIGURE_MEM_SLOTS, ProtocolFeature.LOG_SHMFD, ProtocolFeature.INFLIGHT_SHMFD));
            MemorySegment b = body(rig);
            // SET_MEM_TABLE: one region of 1 MiB over 64 KiB.
            b.set(NATIVE_U32, 0, 1);
            b.set(NATIVE_U32, 4, 0);
            b.set(NATIVE_U64, 8, Rig.GUEST_BASE);
            b.set(NATIVE_U64, 16, 1 << 20);
            b.set(NATIVE_U64, 24, Rig.USER_BASE);
            b.set(NATIVE_U64, 32, 0);
            rig.fe.writer().sendUnchecked(FrontendRequest.SET_MEM_TABLE.code(), NEED_REPLY, 40, List.of(small));
            assertErrorAck(rig.fe.channel(), FrontendRequest.SET_MEM_TABLE.code());
            // ADD_MEM_REG: 64 KiB at offset 32 KiB of 64 KiB.
            b.set(NATIVE_U64, 0, 0);
            b.set(NATIVE_U64, 8, Rig.GUEST_BASE);
            b.set(NATIVE_U64, 16, 64 * 1024);
            b.set(NATIVE_U64, 24, Rig.USER_BASE);
            b.set(NATIVE_U64, 32, 32 * 1024);
            rig.fe.writer().sendUnchecked(FrontendRequest.ADD_MEM_REG.code(), NEED_REPLY, 40, List.of(small));
            assertErrorAck(rig.fe.channel(), FrontendRequest.ADD_MEM_REG.code());
            assertEquals(0, served.server().backend().memory().regionCount(), "no region was mapped");
            // SET_LOG_BASE: a 1 MiB log over 64 KiB (its reply is a u64 status of its own).
            b.set(NATIVE_U64, 0, 1 << 20);
            b.set(NATIVE_U64, 8, 0);
            rig.fe.writer().sendUnchecked(FrontendRequest.SET_LOG_BASE.code(), VERSION, 16, List.of(small));
            assertErrorAck(rig.fe.channel(), FrontendRequest.SET_LOG_BASE.code());
            // SET_INFLIGHT_FD: 2 queues of 256 descriptors (8 KiB each) over 64 KiB at offset 60 KiB.
            b.set(NATIVE_U64, 0, 2 * InflightRegion.queueRegionBytes(256, false));
            b.set(NATIVE_U64, 8, 60 * 1024);
            b.set(NATIVE_U16, 16, (short) 1);
            b.set(NATIVE_U16, 18, (short) 256);
            b.set(NATIVE_U32, 20, 0);
            rig.fe.writer().sendUnchecked(FrontendRequest.SET_INFLIGHT_FD.code(), NEED_REPLY, 24, List.of(small));
            assertErrorAck(rig.fe.channel(), FrontendRequest.SET_INFLIGHT_FD.code());
            assertStillServing(rig);
        }
    }

    /** Replaces the rig's guest RAM by a memfd of the same place and size made with {@code allowSealing} and no seal. */
    private static GuestRegion unsealedRam(Rig rig, boolean allowSealing) throws IOException {
        GuestRegion region;
        try (OwnedFd fd = MemFd.create("unsealed-guest-ram", MEMORY, allowSealing)) {
            region = GuestRegion.map(Rig.GUEST_BASE, MEMORY, Rig.USER_BASE, 0, fd, true);
        }
        rig.regions.get(0).close();
        rig.regions.set(0, region);
        rig.memory = GuestMemory.of(rig.regions);
        return region;
    }

    /**
     * Finding: a front-end that shrinks its guest RAM under a running ring made the back-end's next access
     * raise SIGBUS, which aborted the whole JVM. The back-end now seals every memory fd it maps against
     * shrinking when the file allows it, so the attacker's ftruncate fails and the ring goes on.
     */
    @Test
    void truncatingSharedMemoryUnderARunningRingShouldFailForTheFrontEnd() throws Exception {
        try (Rig rig = hostile()) {
            GuestRegion ram = unsealedRam(rig, true);
            assertEquals(0, MemFd.seals(ram.fd()) & MemFd.SEAL_SHRINK, "the front-end's file starts unsealed");
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, rig.fe.features(), 2, 4096);
            rig.program(ring, Rig.Setup.standard());
            assertEquals(RamBlkDevice.S_OK, ring.write(0, 1, new byte[512]));
            assertEquals(MemFd.SEAL_SHRINK, MemFd.seals(ram.fd()) & MemFd.SEAL_SHRINK, "the back-end sealed the file");
            assertEquals(1 /* EPERM */, PeerSyscalls.ftruncate(ram.fd().get(), 0), "the front-end's ftruncate is refused");
            assertEquals(MEMORY, MemFd.size(ram.fd().get()), "the file kept its size");
            assertEquals(RamBlkDevice.S_OK, ring.write(1, 2, new byte[512]), "the ring still serves after the attempt");
        }
    }

    /**
     * Finding: the back-end recorded a peer eventfd's blocking mode once, at adoption. A front-end that then
     * clears O_NONBLOCK on its copy of the call eventfd and fills the counter made the next used-buffer
     * notification block in write(2) forever, and with it the worker, GET_VRING_BASE, the disconnect and
     * every later front-end. The notification must now be skipped (the counter is signalled already).
     */
    @Test
    void aCallEventfdMadeBlockingAndFullShouldNotWedgeTheBackEnd() throws Exception {
        try (Rig rig = hostile()) {
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, rig.fe.features(), 2, 4096);
            rig.program(ring, Rig.Setup.standard());
            assertEquals(RamBlkDevice.S_OK, ring.write(0, 1, new byte[512]));
            ring.call.drain();
            ring.call.signal(0xffff_ffff_ffff_fffeL); // the most an eventfd holds: the next write would block
            assertTrue(PeerSyscalls.clearNonBlocking(ring.call.fd()), "O_NONBLOCK cleared on the shared description");
            for (int i = 0; i < 4; i++) {
                assertEquals(RamBlkDevice.S_OK, ring.write(1, 2 + i, new byte[512]), "request " + i + " completes");
            }
            rig.fe.getVringBase(0); // the control thread reaches the worker
            assertStillServing(rig);
        }
    }

    /**
     * A memory fd that cannot be sealed (a memfd made without MFD_ALLOW_SEALING, as DPDK's virtio-user sends):
     * by default it is mapped with a warning (the residual risk documented on
     * {@link VhostUserBackend.UnsealableMemory#ACCEPT_WITH_WARNING}); a back-end configured with
     * {@link VhostUserBackend.UnsealableMemory#REFUSE} refuses the request and maps nothing, so a later
     * truncation cannot reach it.
     */
    @Test
    void unsealableMemoryShouldFollowThePolicy() throws Exception {
        try (Rig rig = hostile()) {
            unsealedRam(rig, false);
            rig.setMemTable(); // default policy: accepted (with a warning)
            assertEquals(1, served.server().backend().memory().regionCount(), "mapped under ACCEPT_WITH_WARNING");
        }
        Path refusing = dir.resolve("refusing.sock");
        RamBlkDevice other = RamBlkDevice.ram(1 << 20, 1);
        VhostUserServer server = VhostUserServer.listen(other, new VhostUserBackend.Options(1, false)
                .withUnsealableMemory(VhostUserBackend.UnsealableMemory.REFUSE), refusing);
        Thread thread = Thread.ofPlatform().daemon(true).start(server::run);
        try (Rig.Served strict = new Rig.Served(server, thread); Rig rig = Rig.connect(refusing, MEMORY)) {
            rig.fe.negotiate(VirtioFeature.VERSION_1.mask(), ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK));
            GuestRegion ram = unsealedRam(rig, false);
            MemorySegment b = body(rig);
            b.set(NATIVE_U32, 0, 1);
            b.set(NATIVE_U32, 4, 0);
            b.set(NATIVE_U64, 8, Rig.GUEST_BASE);
            b.set(NATIVE_U64, 16, MEMORY);
            b.set(NATIVE_U64, 24, Rig.USER_BASE);
            b.set(NATIVE_U64, 32, 0);
            rig.fe.writer().sendUnchecked(FrontendRequest.SET_MEM_TABLE.code(), NEED_REPLY, 40, List.of(ram.fd()));
            assertErrorAck(rig.fe.channel(), FrontendRequest.SET_MEM_TABLE.code());
            assertEquals(0, server.backend().memory().regionCount(), "nothing mapped under REFUSE");
            // A sealable file is still welcome on the same connection.
            unsealedRam(rig, true);
            rig.setMemTable();
            assertEquals(1, server.backend().memory().regionCount());
        }
    }

    /**
     * Finding: nothing bounded the address space a front-end could make us map (509 sparse memfds of many
     * TiB each). The back-end's mapping budget refuses the region that would exceed it, and gives every
     * byte back when the connection ends.
     */
    @Test
    void regionsBeyondTheMappingBudgetShouldBeRefused() throws Exception {
        Path capped = dir.resolve("capped.sock");
        VhostUserServer server = VhostUserServer.listen(RamBlkDevice.ram(1 << 20, 1),
                new VhostUserBackend.Options(1, false).withMappingBudgetBytes(MEMORY + (1 << 20)), capped);
        Thread thread = Thread.ofPlatform().daemon(true).start(server::run);
        try (Rig.Served strict = new Rig.Served(server, thread)) {
            try (Rig rig = Rig.connect(capped, MEMORY)) {
                rig.fe.negotiate(VirtioFeature.VERSION_1.mask(), ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK,
                        ProtocolFeature.CONFIGURE_MEM_SLOTS));
                rig.setMemTable();
                assertEquals(MEMORY, server.backend().mappingBudget().reservedBytes());
                GuestRegion second = rig.addRegion(2 << 20);
                IOException refused = assertThrows(IOException.class, () -> rig.fe.addMemRegion(second));
                assertTrue(refused.getMessage() != null, "refusal reported");
                assertEquals(1, server.backend().memory().regionCount(), "the region over budget was not mapped");
                assertEquals(MEMORY, server.backend().mappingBudget().reservedBytes());
                assertStillServing(rig);
            }
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (server.backend().isServing() && System.nanoTime() - deadline < 0) {
                LockSupport.parkNanos(1_000_000);
            }
            assertEquals(0, server.backend().mappingBudget().reservedBytes(), "the budget is whole again");
        }
    }

    /**
     * A device-state load whose pipe the front-end keeps open and never writes, then the front-end leaves:
     * the next front-end is served meanwhile, and the back-end's copy of the pipe is released once the
     * peer's end closes. (It cannot be released earlier: core's FdChannel offers no way to cancel a read
     * blocked in another thread, its close waits for that read.)
     */
    @Test
    void anAbandonedDeviceStateTransferShouldNotBlockTheNextFrontEndNorLeakItsFd() throws Exception {
        OwnedFd[] pipe = dev.outproc.core.fd.FdChannel.pipe();
        try (OwnedFd writeEnd = pipe[1]) {
            try (Rig rig = hostile(true, VirtioFeature.VERSION_1.mask())) {
                rig.fe.negotiate(VirtioFeature.VERSION_1.mask(), ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK,
                        ProtocolFeature.DEVICE_STATE));
                try (OwnedFd readEnd = pipe[0]) {
                    rig.fe.setDeviceStateFd(false, readEnd);
                }
            }
            // The transfer never ends while our write end is open; the next front-end must be served anyway.
            cleanSession(new SplittableRandom(seed + 3));
            // The disconnect closed the back-end's read end: writing now fails with EPIPE instead of filling a pipe.
            try (dev.outproc.core.fd.FdChannel writer = dev.outproc.core.fd.FdChannel.of(writeEnd.duplicate())) {
                IOException broken = assertThrows(IOException.class, () -> {
                    for (int i = 0; i < 1000; i++) {
                        writer.write(java.nio.ByteBuffer.allocate(4096));
                    }
                });
                assertTrue(broken.getMessage().contains("EPIPE"), broken.getMessage());
            }
        }
        // Write end closed: the @AfterEach check finds the fd count back at its baseline.
    }

    @Test
    void featuresThatWereNotOfferedShouldBeRefused() throws Exception {
        try (Rig rig = hostile()) {
            body(rig).set(NATIVE_U64, 0, VirtioFeature.VERSION_1.mask() | (1L << 63));
            rig.fe.writer().sendUnchecked(FrontendRequest.SET_FEATURES.code(), NEED_REPLY, 8, List.of());
            assertErrorAck(rig.fe.channel(), FrontendRequest.SET_FEATURES.code());
            body(rig).set(NATIVE_U64, 0, ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.PAGEFAULT));
            rig.fe.writer().sendUnchecked(FrontendRequest.SET_PROTOCOL_FEATURES.code(), NEED_REPLY, 8, List.of());
            assertErrorAck(rig.fe.channel(), FrontendRequest.SET_PROTOCOL_FEATURES.code());
            assertEquals(ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK),
                    served.server().backend().negotiatedProtocolFeatures(), "the refused value did not take effect");
            assertStillServing(rig);
        }
    }

    /** Postcopy is not offered: a request for it gets an error status where its reply is a u64, else a close. */
    @Test
    void postcopyRequestsShouldGetAClearError() throws Exception {
        try (Rig rig = hostile()) {
            rig.fe.writer().sendUnchecked(FrontendRequest.POSTCOPY_END.code(), VERSION, 0, List.of());
            RawReply end = readRaw(rig.fe.channel());
            assertEquals(FrontendRequest.POSTCOPY_END.code(), end.request());
            assertNotEquals(0L, end.u64(), "POSTCOPY_END answers with an error status");
            body(rig).set(NATIVE_U64, 0, 0);
            rig.fe.writer().sendUnchecked(FrontendRequest.POSTCOPY_LISTEN.code(), NEED_REPLY, 0, List.of());
            assertErrorAck(rig.fe.channel(), FrontendRequest.POSTCOPY_LISTEN.code());
            // POSTCOPY_ADVISE's reply must carry a userfaultfd: there is no way to refuse but to close.
            rig.fe.writer().sendUnchecked(FrontendRequest.POSTCOPY_ADVISE.code(), VERSION, 0, List.of());
            assertClosed(rig.fe.channel());
        }
    }

    @Test
    void shortPayloadsShouldGetErrorAcks() throws Exception {
        try (Rig rig = hostile()) {
            FrontendRequest[] requests = {FrontendRequest.SET_VRING_NUM, FrontendRequest.SET_FEATURES,
                    FrontendRequest.SET_VRING_ADDR, FrontendRequest.SET_MEM_TABLE, FrontendRequest.SET_VRING_BASE};
            for (FrontendRequest r : requests) {
                body(rig).fill((byte) 0);
                rig.fe.writer().sendUnchecked(r.code(), NEED_REPLY, 4, List.of());
                assertErrorAck(rig.fe.channel(), r.code());
            }
            assertStillServing(rig);
        }
    }

    @Test
    void aSplitRingSizeThatIsNotAPowerOfTwoShouldBeRefused() throws Exception {
        try (Rig rig = hostile()) {
            for (int size : new int[] {0, 3, 100, 255, 512, 65535}) {
                MemorySegment b = body(rig);
                b.set(NATIVE_U32, 0, 0);
                b.set(NATIVE_U32, 4, size);
                rig.fe.writer().sendUnchecked(FrontendRequest.SET_VRING_NUM.code(), NEED_REPLY, 8, List.of());
                assertErrorAck(rig.fe.channel(), FrontendRequest.SET_VRING_NUM.code());
            }
            assertStillServing(rig);
        }
    }

    @Test
    void aRefusalWithoutReplyAckShouldCloseTheConnection() throws Exception {
        try (Rig rig = hostile(false, VirtioFeature.VERSION_1.mask())) {
            MemorySegment b = body(rig);
            b.set(NATIVE_U32, 0, 0);
            b.set(NATIVE_U32, 4, 100);
            rig.fe.writer().sendUnchecked(FrontendRequest.SET_VRING_NUM.code(), VERSION, 8, List.of());
            assertClosed(rig.fe.channel());
        }
    }

    @Test
    void ringSetUpBeforeTheMemoryTableShouldBeRefused() throws Exception {
        try (Rig rig = hostile(); EventFd kick = EventFd.create()) {
            rig.fe.setVringNum(0, 16);
            MemorySegment b = body(rig);
            b.set(NATIVE_U32, 0, 0);
            b.set(NATIVE_U32, 4, 0);
            b.set(NATIVE_U64, 8, Rig.USER_BASE);
            b.set(NATIVE_U64, 16, Rig.USER_BASE + 0x1000);
            b.set(NATIVE_U64, 24, Rig.USER_BASE + 0x2000);
            b.set(NATIVE_U64, 32, 0);
            rig.fe.writer().sendUnchecked(FrontendRequest.SET_VRING_ADDR.code(), NEED_REPLY, 40, List.of());
            assertErrorAck(rig.fe.channel(), FrontendRequest.SET_VRING_ADDR.code());
            b.set(NATIVE_U64, 0, 0);
            rig.fe.writer().sendUnchecked(FrontendRequest.SET_VRING_KICK.code(), NEED_REPLY, 8, List.of(kick.owner()));
            assertErrorAck(rig.fe.channel(), FrontendRequest.SET_VRING_KICK.code());
            assertEquals(0, rig.fe.getVringBase(0), "GET_VRING_BASE still answers");
            assertTrue(!served.server().backend().ring(0).isStarted(), "the ring did not start");
        }
    }

    @Test
    void aTruncatedMessageFollowedByACloseShouldEndOnlyThatConnection() throws Exception {
        try (Rig rig = hostile()) {
            MemorySegment raw = Arena.ofAuto().allocate(15);
            raw.set(NATIVE_U32, 0, FrontendRequest.SET_FEATURES.code());
            raw.set(NATIVE_U32, 4, VERSION);
            raw.set(NATIVE_U32, 8, 8);
            rig.fe.channel().write(raw); // header + 3 of 8 payload bytes, then close
        }
        long before = served.server().connections();
        assertTrue(before >= 2);
    }

    // ---- ring attacks ----

    /**
     * A split ring of 16 whose layout (zeroed) comes from core's driver queue and whose programming comes
     * from the rig, but whose descriptors and avail entries are written by hand. Every test that uses it
     * writes what core's {@code SplitDriverQueue} cannot produce (loops, heads and next indices beyond the
     * queue, nested or misaligned indirect tables, an avail index that jumps, buffers past guest memory), so
     * these writers stay; well-formed traffic in this class goes through the rig's driver queues.
     */
    private final class RawRing implements AutoCloseable {
        static final int SIZE = 16;
        final Rig rig;
        final long desc;
        final long avail;
        final long used;
        final long data;
        final long table;
        final EventFd kick;
        final EventFd call;
        final EventFd err;

        RawRing(Rig rig) throws IOException {
            this.rig = rig;
            rig.setMemTable();
            fillPattern(rig.regions.get(0).segment(), new SplittableRandom(seed));
            Rig.Ring ring = rig.ring(0, SIZE, rig.fe.features(), 0, 0);
            QueueConfig c = ring.dq.config();
            desc = c.descAddr();
            avail = c.driverAddr();
            used = c.deviceAddr();
            data = rig.allocator.allocate(8192, 4096);
            table = rig.allocator.allocate(4096, 4096);
            rig.program(ring, Rig.Setup.standard());
            kick = ring.kick;
            call = ring.call;
            err = ring.err;
        }

        void desc(long base, int i, long addr, int len, int flags, int next) throws IOException {
            MemorySegment d = rig.memory.slice(base + 16L * i, 16);
            d.set(LE_U64, 0, addr);
            d.set(LE_U32, 8, len);
            d.set(LE_U16, 12, (short) flags);
            d.set(LE_U16, 14, (short) next);
        }

        void offer(int... heads) throws IOException {
            MemorySegment a = rig.memory.slice(avail, 6 + 2 * SIZE);
            for (int i = 0; i < heads.length; i++) {
                a.set(LE_U16, 4 + 2 * i, (short) heads[i]);
            }
            a.set(LE_U16, 2, (short) heads.length);
        }

        /** Kicks, waits for the ring's error fd, and checks that guest memory is exactly as before. */
        void kickAndExpectBrokenRing() throws IOException {
            MemorySegment guest = rig.regions.get(0).segment();
            byte[] before = guest.toArray(ValueLayout.JAVA_BYTE);
            kick.signal();
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (err.drain() == 0) {
                if (System.nanoTime() - deadline > 0) {
                    fail("the ring's error fd was not signalled within 10 s, seed=" + seed);
                }
                LockSupport.parkNanos(1_000_000);
            }
            assertTrue(!served.server().backend().ring(0).isStarted() || served.server().backend().ring(0).toString().contains("broken"),
                    "ring state " + served.server().backend().ring(0));
            byte[] after = guest.toArray(ValueLayout.JAVA_BYTE);
            // Only the used ring's flags may change (the device may ask for no kicks); no used entry, no index.
            assertOnlyChanged(before, after, List.of(new long[] {used, 2}), "broken ring, seed=" + seed);
            assertEquals(0, rig.memory.slice(used + 2, 2).get(LE_U16, 0), "used index, seed=" + seed);
            assertEquals(0, call.drain(), "no used-buffer notification for a broken ring");
            // The back-end keeps answering on this connection.
            rig.fe.getVringBase(0);
            assertStillServing(rig);
        }

        @Override
        public void close() {
            // The notifiers are the rig's ring's: the rig closes them.
        }
    }

    private static final int F_NEXT = 1;
    private static final int F_WRITE = 2;
    private static final int F_INDIRECT = 4;

    private Rig ringHostile() throws IOException {
        // No EVENT_IDX: then a device that serves nothing writes nothing at all, and any write is visible.
        return hostile(true, VirtioFeature.maskOf(VirtioFeature.VERSION_1, VirtioFeature.INDIRECT_DESC));
    }

    @Test
    void aDescriptorLoopShouldBreakTheRingWithoutWriting() throws Exception {
        try (Rig rig = ringHostile(); RawRing ring = new RawRing(rig)) {
            ring.desc(ring.desc, 0, ring.data, 16, F_NEXT, 1);
            ring.desc(ring.desc, 1, ring.data + 16, 512, F_NEXT | F_WRITE, 2);
            ring.desc(ring.desc, 2, ring.data + 1024, 1, F_NEXT | F_WRITE, 1);
            ring.offer(0);
            ring.kickAndExpectBrokenRing();
        }
    }

    @Test
    void aBufferOutsideGuestMemoryShouldBreakTheRingWithoutWriting() throws Exception {
        try (Rig rig = ringHostile(); RawRing ring = new RawRing(rig)) {
            ring.desc(ring.desc, 0, ring.data, 16, F_NEXT, 1);
            ring.desc(ring.desc, 1, Rig.GUEST_BASE + MEMORY - 8, 512, F_WRITE, 0); // straddles the end
            ring.offer(0);
            ring.kickAndExpectBrokenRing();
        }
    }

    @Test
    void aNextIndexBeyondTheQueueShouldBreakTheRingWithoutWriting() throws Exception {
        try (Rig rig = ringHostile(); RawRing ring = new RawRing(rig)) {
            ring.desc(ring.desc, 0, ring.data, 16, F_NEXT, RawRing.SIZE + 3);
            ring.offer(0);
            ring.kickAndExpectBrokenRing();
        }
    }

    @Test
    void aHeadIndexBeyondTheQueueShouldBreakTheRingWithoutWriting() throws Exception {
        try (Rig rig = ringHostile(); RawRing ring = new RawRing(rig)) {
            ring.desc(ring.desc, 0, ring.data, 16, 0, 0);
            ring.offer(0xffff);
            ring.kickAndExpectBrokenRing();
        }
    }

    @Test
    void aNestedIndirectTableShouldBreakTheRingWithoutWriting() throws Exception {
        try (Rig rig = ringHostile(); RawRing ring = new RawRing(rig)) {
            ring.desc(ring.desc, 0, ring.table, 32, F_INDIRECT, 0);
            ring.desc(ring.table, 0, ring.data, 16, F_NEXT, 1);
            ring.desc(ring.table, 1, ring.table + 1024, 32, F_INDIRECT | F_WRITE, 0);
            ring.desc(ring.table + 1024, 0, ring.data + 512, 512, F_WRITE, 0);
            ring.offer(0);
            ring.kickAndExpectBrokenRing();
        }
    }

    @Test
    void anAvailIndexJumpShouldBreakTheRingWithoutWriting() throws Exception {
        try (Rig rig = ringHostile(); RawRing ring = new RawRing(rig)) {
            ring.desc(ring.desc, 0, ring.data, 16, F_NEXT, 1);
            ring.desc(ring.desc, 1, ring.data + 512, 1, F_WRITE, 0);
            ring.offer(0);
            rig.memory.slice(ring.avail + 2, 2).set(LE_U16, 0, (short) (RawRing.SIZE + 5));
            ring.kickAndExpectBrokenRing();
        }
    }

    @Test
    void anOversizedWritableBufferShouldBreakTheRingWithoutWriting() throws Exception {
        try (Rig rig = ringHostile(); RawRing ring = new RawRing(rig)) {
            ring.desc(ring.desc, 0, ring.data, 16, F_NEXT, 1);
            ring.desc(ring.desc, 1, ring.data + 512, 0xffff_f000, F_WRITE | F_NEXT, 2);
            ring.desc(ring.desc, 2, ring.data + 512, 0xffff_f000, F_WRITE, 0);
            ring.offer(0);
            ring.kickAndExpectBrokenRing();
        }
    }

    @Test
    void anIndirectTableOfBadLengthShouldBreakTheRingWithoutWriting() throws Exception {
        try (Rig rig = ringHostile(); RawRing ring = new RawRing(rig)) {
            ring.desc(ring.desc, 0, ring.table, 24, F_INDIRECT, 0); // not a multiple of 16
            ring.desc(ring.table, 0, ring.data, 16, F_NEXT, 1);
            ring.desc(ring.table, 1, ring.data + 512, 1, F_WRITE, 0);
            ring.offer(0);
            ring.kickAndExpectBrokenRing();
        }
    }

    @Test
    void ringIndicesBeyondTheQueuesShouldBeRefused() throws Exception {
        try (Rig rig = hostile(true, VirtioFeature.VERSION_1.mask()); EventFd fd = EventFd.create()) {
            MemorySegment b = body(rig);
            for (FrontendRequest r : new FrontendRequest[] {FrontendRequest.SET_VRING_NUM, FrontendRequest.SET_VRING_BASE,
                    FrontendRequest.SET_VRING_ENABLE}) {
                b.set(NATIVE_U32, 0, 1); // the device has one queue
                b.set(NATIVE_U32, 4, 1);
                rig.fe.writer().sendUnchecked(r.code(), NEED_REPLY, 8, List.of());
                assertErrorAck(rig.fe.channel(), r.code());
            }
            for (FrontendRequest r : new FrontendRequest[] {FrontendRequest.SET_VRING_KICK, FrontendRequest.SET_VRING_CALL,
                    FrontendRequest.SET_VRING_ERR}) {
                b.set(NATIVE_U64, 0, 200);
                rig.fe.writer().sendUnchecked(r.code(), NEED_REPLY, 8, List.of(fd.owner()));
                assertErrorAck(rig.fe.channel(), r.code());
            }
            // GET_VRING_BASE has no status to carry the refusal: the connection closes.
            b.set(NATIVE_U32, 0, 7);
            b.set(NATIVE_U32, 4, 0);
            rig.fe.writer().sendUnchecked(FrontendRequest.GET_VRING_BASE.code(), VERSION, 8, List.of());
            assertClosed(rig.fe.channel());
        }
    }

    @Test
    void ringAddressesReachingPastMemoryShouldBeRefused() throws Exception {
        try (Rig rig = hostile()) {
            rig.setMemTable();
            rig.fe.setVringNum(0, 256);
            long end = Rig.USER_BASE + MEMORY;
            long[][] cases = {
                    {end - 16 * 255, Rig.USER_BASE + 0x1000, Rig.USER_BASE + 0x2000}, // descriptor table straddles the end
                    {Rig.USER_BASE, Rig.USER_BASE + 0x1000, end - 100},               // used ring straddles the end
                    {Rig.USER_BASE, end, Rig.USER_BASE + 0x2000},                     // avail ring just past the end
                    {-16L * 16, Rig.USER_BASE + 0x1000, Rig.USER_BASE + 0x2000},      // wraps 2^64
            };
            for (long[] c : cases) {
                MemorySegment b = body(rig);
                b.set(NATIVE_U32, 0, 0);
                b.set(NATIVE_U32, 4, 0);
                b.set(NATIVE_U64, 8, c[0]);
                b.set(NATIVE_U64, 16, c[2]);
                b.set(NATIVE_U64, 24, c[1]);
                b.set(NATIVE_U64, 32, 0);
                rig.fe.writer().sendUnchecked(FrontendRequest.SET_VRING_ADDR.code(), NEED_REPLY, 40, List.of());
                assertErrorAck(rig.fe.channel(), FrontendRequest.SET_VRING_ADDR.code());
            }
            assertStillServing(rig);
        }
    }

    @Test
    void removingTheMemoryUnderARunningRingShouldBreakItWithoutHarm() throws Exception {
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.fe.negotiate(VirtioFeature.VERSION_1.mask(), ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK,
                    ProtocolFeature.CONFIGURE_MEM_SLOTS));
            rig.fe.addMemRegion(rig.regions.get(0));
            Rig.Ring ring = rig.ring(0, 16, acked, 2, 4096);
            rig.program(ring, Rig.Setup.standard());
            assertEquals(RamBlkDevice.S_OK, ring.write(0, 1, new byte[512]));
            rig.fe.removeMemRegion(rig.regions.get(0));
            ring.submit(0, RamBlkDevice.T_FLUSH, 0, 0, false, false);
            ring.kick();
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (ring.err.drain() == 0) {
                assertTrue(System.nanoTime() - deadline < 0, "the ring's error fd was not signalled");
                LockSupport.parkNanos(1_000_000);
            }
            assertEquals(-1, ring.poll(100), "nothing served without memory");
            assertEquals(0, served.server().backend().memory().regionCount());
            assertStillServing(rig);
        }
    }

    @Test
    void aGarbageInflightLogShouldNotHarmTheBackEnd() throws Exception {
        SplittableRandom random = new SplittableRandom(seed);
        long bytes = InflightRegion.queueRegionBytes(16, false);
        try (Rig rig = Rig.connect(socket, MEMORY); OwnedFd log = MemFd.create("garbage-inflight", bytes);
             dev.outproc.core.memory.SharedMapping map = dev.outproc.core.memory.SharedMapping.map(log.get(), 0, bytes, true)) {
            long acked = rig.fe.negotiate(VirtioFeature.VERSION_1.mask(), ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK,
                    ProtocolFeature.INFLIGHT_SHMFD));
            byte[] junk = new byte[(int) bytes];
            random.nextBytes(junk);
            MemorySegment.copy(junk, 0, map.segment(), ValueLayout.JAVA_BYTE, 0, junk.length);
            // A valid header (version 1, 16 descriptors) over random descriptor states and counters.
            map.segment().set(NATIVE_U16, 8, (short) 1);
            map.segment().set(NATIVE_U16, 10, (short) 16);
            rig.fe.setInflightFd(new VhostUserFrontendInflight(log, bytes).value());
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, acked, 2, 4096);
            // The resubmitted heads point at zeroed descriptors: the device either serves them or the ring breaks.
            try {
                rig.program(ring, Rig.Setup.standard());
            } catch (dev.outproc.vhost.frontend.FrontendException refused) {
                return; // refused outright: also harmless
            }
            rig.fe.getVringBase(0);
            assertStillServing(rig);
        }
    }

    /** Builds the front-end's inflight record around a log the test made itself. */
    private record VhostUserFrontendInflight(OwnedFd fd, long bytes) {
        dev.outproc.vhost.frontend.VhostUserFrontend.Inflight value() {
            return new dev.outproc.vhost.frontend.VhostUserFrontend.Inflight(fd, bytes, 0, 1, 16);
        }
    }

    /**
     * A packed ring of 16 (VIRTIO 1.x §2.8) laid out by core's driver queue and programmed by the rig, whose
     * descriptors are written by hand: chains longer than the ring, buffer ids beyond the queue, nested
     * indirect tables, buffers outside memory, none of which core's {@code PackedDriverQueue} can produce.
     */
    private final class RawPackedRing implements AutoCloseable {
        static final int SIZE = 16;
        static final int AVAIL = 1 << 7;
        final Rig rig;
        final long desc;
        final long driverEvent;
        final long deviceEvent;
        final long data;
        final EventFd kick;
        final EventFd call;
        final EventFd err;

        RawPackedRing(Rig rig) throws IOException {
            this.rig = rig;
            rig.setMemTable();
            fillPattern(rig.regions.get(0).segment(), new SplittableRandom(seed));
            Rig.Ring ring = rig.ring(0, SIZE, rig.fe.features(), 0, 0);
            QueueConfig c = ring.dq.config();
            desc = c.descAddr();
            driverEvent = c.driverAddr();
            deviceEvent = c.deviceAddr();
            data = rig.allocator.allocate(8192, 4096);
            rig.program(ring, Rig.Setup.standard());
            kick = ring.kick;
            call = ring.call;
            err = ring.err;
        }

        /** Writes descriptor {@code i}; {@code flags} get AVAIL (first wrap) added. */
        void desc(int i, long addr, int len, int id, int flags) throws IOException {
            MemorySegment d = rig.memory.slice(desc + 16L * i, 16);
            d.set(LE_U64, 0, addr);
            d.set(LE_U32, 8, len);
            d.set(LE_U16, 12, (short) id);
            d.set(LE_U16, 14, (short) (flags | AVAIL));
        }

        void kickAndExpectBrokenRing() throws IOException {
            MemorySegment guest = rig.regions.get(0).segment();
            byte[] before = guest.toArray(ValueLayout.JAVA_BYTE);
            kick.signal();
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (err.drain() == 0) {
                if (System.nanoTime() - deadline > 0) {
                    fail("the ring's error fd was not signalled within 10 s, seed=" + seed);
                }
                LockSupport.parkNanos(1_000_000);
            }
            byte[] after = guest.toArray(ValueLayout.JAVA_BYTE);
            // Only the device event area may change; no descriptor is marked used.
            assertOnlyChanged(before, after, List.of(new long[] {deviceEvent, 4}), "broken packed ring, seed=" + seed);
            assertEquals(0, call.drain(), "no used-buffer notification for a broken ring");
            rig.fe.getVringBase(0);
            assertStillServing(rig);
        }

        @Override
        public void close() {
            // The notifiers are the rig's ring's: the rig closes them.
        }
    }

    private Rig packedHostile() throws IOException {
        return hostile(true, VirtioFeature.maskOf(VirtioFeature.VERSION_1, VirtioFeature.INDIRECT_DESC, VirtioFeature.RING_PACKED));
    }

    @Test
    void aPackedChainLongerThanTheRingShouldBreakItWithoutWriting() throws Exception {
        try (Rig rig = packedHostile(); RawPackedRing ring = new RawPackedRing(rig)) {
            ring.desc(0, ring.data, 16, 0, F_NEXT);
            for (int i = 1; i < RawPackedRing.SIZE; i++) {
                ring.desc(i, ring.data + 512, 8, 0, F_NEXT | F_WRITE);
            }
            ring.kickAndExpectBrokenRing();
        }
    }

    @Test
    void aPackedBufferIdBeyondTheQueueShouldBreakItWithoutWriting() throws Exception {
        try (Rig rig = packedHostile(); RawPackedRing ring = new RawPackedRing(rig)) {
            ring.desc(0, ring.data, 16, 0, F_NEXT);
            ring.desc(1, ring.data + 512, 1, 999, F_WRITE);
            ring.kickAndExpectBrokenRing();
        }
    }

    @Test
    void aPackedBufferOutsideMemoryShouldBreakItWithoutWriting() throws Exception {
        try (Rig rig = packedHostile(); RawPackedRing ring = new RawPackedRing(rig)) {
            ring.desc(0, ring.data, 16, 0, F_NEXT);
            ring.desc(1, 0x7fff_0000_0000L, 512, 0, F_WRITE);
            ring.kickAndExpectBrokenRing();
        }
    }

    @Test
    void aPackedNestedIndirectTableShouldBreakItWithoutWriting() throws Exception {
        try (Rig rig = packedHostile(); RawPackedRing ring = new RawPackedRing(rig)) {
            long table = ring.data + 4096;
            MemorySegment t = rig.memory.slice(table, 32);
            t.set(LE_U64, 0, ring.data);
            t.set(LE_U32, 8, 16);
            t.set(LE_U16, 14, (short) 0);
            t.set(LE_U64, 16, table);
            t.set(LE_U32, 24, 32);
            t.set(LE_U16, 30, (short) F_INDIRECT);
            ring.desc(0, table, 32, 0, F_INDIRECT);
            ring.kickAndExpectBrokenRing();
        }
    }

    /**
     * A front-end that opens the back-end channel and never reads it, with calls in-band: the back-end's
     * sends fill the socket and block. The rings must keep running, a request that waits for a ring's
     * worker must not hang, and when that front-end leaves (keeping the back-end channel open) the
     * back-end must release everything and serve the next one.
     */
    @Test
    void aBackEndChannelThatIsNeverReadShouldNotHangTheBackEnd() throws Exception {
        MessageChannel.Pair pair = MessageChannel.pair();
        MessageChannel unread = pair.channel();
        try (Rig rig = Rig.connect(socket, MEMORY)) {
            long acked = rig.fe.negotiate(VirtioFeature.VERSION_1.mask(), ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK,
                    ProtocolFeature.INBAND_NOTIFICATIONS, ProtocolFeature.BACKEND_REQ));
            try (OwnedFd theirs = pair.peerFd()) {
                rig.fe.writer().sendUnchecked(FrontendRequest.SET_BACKEND_REQ_FD.code(), NEED_REPLY, 0, List.of(theirs));
            }
            RawReply ack = readRaw(rig.fe.channel());
            assertEquals(0, ack.u64(), "SET_BACKEND_REQ_FD accepted");
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, acked, 1, 4096);
            rig.program(ring, Rig.Setup.standard().withoutCallFd());
            // Each completion asks for a VRING_CALL nobody reads: the socket fills within a few hundred and the
            // back-end's call sender blocks, but the ring's worker must not, so the I/O goes on.
            int completed = 0;
            for (int i = 0; i < 5_000; i++) {
                ring.submit(0, RamBlkDevice.T_GET_ID, 0, 20, true, false);
                ring.kick();
                if (ring.poll(2_000) < 0) {
                    break;
                }
                completed++;
            }
            assertEquals(5_000, completed, "requests completed although nobody reads the calls");
            // A request that needs the ring's worker, which a blocking send would hold; the reply is not awaited.
            MemorySegment b = body(rig);
            b.set(NATIVE_U32, 0, 0);
            b.set(NATIVE_U32, 4, 0);
            rig.fe.writer().sendUnchecked(FrontendRequest.GET_VRING_BASE.code(), VERSION, 8, List.of());
        }
        try {
            // The connection is closed, the unread channel is still open: the next front-end must be served.
            cleanSession(new SplittableRandom(seed + 2));
        } finally {
            unread.close();
        }
    }

    /**
     * A call eventfd in blocking mode whose counter the front-end filled to its maximum: the back-end's
     * signal must not block the ring's worker (eventfd(2): a write that would overflow the counter blocks
     * unless the fd is non-blocking, and the mode belongs to the file description the peer shares).
     */
    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void aFullBlockingCallEventfdShouldNotBlockTheBackEnd() throws Exception {
        try (Rig rig = hostile(); EventFd call = EventFd.createBlocking()) {
            call.signal(0xffff_ffff_ffff_fffeL); // the counter's maximum: one more would block a blocking writer
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, rig.fe.features(), 1, 4096);
            rig.program(ring, Rig.Setup.standard());
            rig.fe.setVringCall(0, call);
            for (int i = 0; i < 3; i++) {
                ring.submit(0, RamBlkDevice.T_GET_ID, 0, 20, true, false);
                ring.kick();
                assertEquals(0, ring.await(5_000), "request " + i + " served");
            }
            assertTrue(rig.fe.getVringBase(0) >= 3, "GET_VRING_BASE answers: the worker is not stuck");
        }
    }

    /** Not an attack on the framing: a front-end that vanishes with rings running and memory mapped. */
    @Test
    void aFrontEndThatVanishesWithRunningRingsShouldLeaveNothingBehind() throws Exception {
        Rig rig = hostile();
        rig.setMemTable();
        Rig.Ring ring = rig.ring(0, 16, rig.fe.features(), 2, 4096);
        rig.program(ring, Rig.Setup.standard());
        ring.submit(0, RamBlkDevice.T_GET_ID, 0, 20, true, false);
        ring.kick();
        int slot = ring.await(10_000);
        assertEquals(RamBlkDevice.S_OK, ring.status(slot));
        byte[] id = new byte[RamBlkDevice.ID.length()];
        MemorySegment.copy(ring.data(slot), ValueLayout.JAVA_BYTE, 0, id, 0, id.length);
        assertEquals(RamBlkDevice.ID, new String(id, java.nio.charset.StandardCharsets.US_ASCII));
        ring.submit(1, RamBlkDevice.T_FLUSH, 0, 0, false, false);
        ring.dq.publish(); // left in flight: the front-end vanishes with it
        rig.close();
    }
}
