package dev.outproc.vhost.backend;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.memory.Layouts;
import dev.outproc.core.memory.MemFd;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.PayloadType;
import dev.outproc.vhost.message.VhostUserHeader;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.AfterAll;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The whole dispatch of a {@link VhostUserBackend} under a hostile front-end: the fuzzer's bytes become a
 * sequence of messages (request numbers, flags, payload fields steered towards plausible values half of
 * the time) with fds attached (a 1 MiB memfd of guest memory, eventfds, sockets carrying device state,
 * memfds for the inflight area and the log), interleaved with kicks and with writes of arbitrary bytes into
 * the guest memory behind the rings. The messages go through the real handlers on a socketpair; the
 * device is the tests' RAM block device, so started rings do real I/O on whatever the fuzzer put there.
 *
 * <p>What counts as a finding: {@code serve} throwing anything but an {@link IOException} (the documented
 * end of a connection that broke the protocol), {@code serve} not returning within ten seconds of the
 * peer's end of stream (a hang), an uncaught throwable on any thread, or an fd of this process that is
 * still open after the connection ended. One back-end serves every input, so state left behind by one
 * connection shows up in the next.
 */
class DispatchFuzzTest {
    private static final ValueLayout.OfInt U32 = Layouts.LE_U32;
    private static final ValueLayout.OfLong U64 = Layouts.LE_U64;
    private static final ValueLayout.OfShort U16 = Layouts.LE_U16;
    private static final long RAM = 1L << 20;
    private static final int MAX_MESSAGES = 48;

    private static VhostUserBackend backend;
    private static GuestRegion guest;
    private static ExecutorService server;
    private static final List<Throwable> uncaught = new java.util.concurrent.CopyOnWriteArrayList<>();

    private static void setUp() throws IOException {
        if (backend != null) {
            return;
        }
        Thread.setDefaultUncaughtExceptionHandler((t, e) -> uncaught.add(e));
        backend = new VhostUserBackend(RamBlkDevice.ram(1 << 20, 2), new VhostUserBackend.Options(1, false));
        guest = GuestRegion.allocate(Rig.GUEST_BASE, RAM, Rig.USER_BASE);
        server = Executors.newSingleThreadExecutor(r -> Thread.ofPlatform().daemon(true).name("fuzz-serve").unstarted(r));
    }

    @AfterAll
    static void tearDown() {
        if (backend != null) {
            backend.close();
            guest.close();
            server.shutdownNow();
            backend = null;
        }
    }

    @FuzzTest(maxDuration = "30s")
    void dispatchArbitrarySequences(FuzzedDataProvider data) throws Exception {
        setUp();
        int fdsBefore = TestFds.count();
        var before = TestFds.snapshot();
        guest.segment().fill((byte) 0);
        Held held = new Held();
        MessageChannel.Pair pair = MessageChannel.pair();
        MessageChannel peer = MessageChannel.adopt(pair.peerFd());
        Future<?> served = server.submit(() -> {
            backend.serve(pair.channel());
            return null;
        });
        try (Arena arena = Arena.ofConfined()) {
            for (int i = 0; i < MAX_MESSAGES && data.remainingBytes() > 0; i++) {
                int action = data.consumeInt(0, 9);
                if (action == 0) {
                    pokeGuest(data);
                } else if (action == 1) {
                    if (!held.kicks.isEmpty()) {
                        held.kicks.get(data.consumeInt(0, held.kicks.size() - 1)).trySignal();
                    }
                } else if (!send(peer, arena, data, held)) {
                    break;
                }
            }
        } finally {
            peer.shutdown();
            try {
                served.get(10, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof IOException)) {
                    throw new AssertionError("serve threw " + e.getCause(), e.getCause());
                }
            } catch (TimeoutException e) {
                throw new AssertionError("serve did not return within 10 s of the peer's end of stream");
            } finally {
                peer.close();
                held.close();
            }
        }
        if (!uncaught.isEmpty()) {
            Throwable t = uncaught.get(0);
            uncaught.clear();
            throw new AssertionError("uncaught on a back-end thread: " + t, t);
        }
        int after = TestFds.settle(fdsBefore);
        if (after != fdsBefore) {
            Map<Integer, String> leaked = TestFds.newSince(before);
            throw new AssertionError("fds after the connection: " + after + ", before: " + fdsBefore + ", new: " + leaked);
        }
    }

    /** Arbitrary bytes at an arbitrary place of guest memory (rings, descriptors, request headers). */
    private static void pokeGuest(FuzzedDataProvider data) {
        long at = data.consumeLong(0, RAM - 1);
        byte[] bytes = data.consumeBytes((int) Math.min(64, RAM - at));
        MemorySegment.copy(bytes, 0, guest.segment(), ValueLayout.JAVA_BYTE, at, bytes.length);
    }

    /** Sends one message; returns false once the back-end closed the connection. */
    private static boolean send(MessageChannel peer, Arena arena, FuzzedDataProvider data, Held held) throws IOException {
        int pick = data.consumeInt(0, FrontendRequest.MAX_CODE + 3);
        long code = pick == 0 || pick > FrontendRequest.MAX_CODE ? data.consumeInt() & 0xFFFF_FFFFL : pick;
        FrontendRequest request = FrontendRequest.ofCode(code);
        long flags = data.consumeInt(0, 15) == 0 ? data.consumeInt()
                : VhostUserHeader.VERSION | (data.consumeBoolean() ? VhostUserHeader.NEED_REPLY_FLAG : 0);
        List<OwnedFd> fds = new ArrayList<>();
        MemorySegment payload;
        if (request == null || data.consumeInt(0, 7) == 0) {
            payload = MemorySegment.ofArray(data.consumeBytes(data.consumeInt(0, 300)));
            for (int n = data.consumeInt(0, 2); n > 0; n--) {
                fds.add(held.eventFd().owner().duplicate());
            }
        } else {
            payload = plausible(request, arena, data, held, fds);
        }
        int size = data.consumeInt(0, 31) == 0 ? data.consumeInt(0, 0x1000) : (int) payload.byteSize();
        MemorySegment message = arena.allocate(VhostUserHeader.ENCODED_LENGTH + payload.byteSize());
        new VhostUserHeader.Encoder().wrap(message, 0).request(code).flags(flags & 0xFFFF_FFFFL).size(size);
        MemorySegment.copy(payload, 0, message, VhostUserHeader.ENCODED_LENGTH, payload.byteSize());
        try {
            peer.write(message, fds);
            return true;
        } catch (IOException e) {
            return false; // the back-end closed the connection: the rest of the input is moot
        } finally {
            OwnedFd.closeAll(fds);
        }
    }

    /** A payload of the request's own type whose fields are steered towards values the checks accept. */
    private static MemorySegment plausible(FrontendRequest r, Arena arena, FuzzedDataProvider data, Held held,
            List<OwnedFd> fds) throws IOException {
        PayloadType type = r.rules().requestPayload();
        int length = type == PayloadType.MEM_TABLE ? 8 : type.minBytes();
        MemorySegment p;
        switch (type) {
            case MEM_TABLE -> {
                int regions = data.consumeInt(0, 3);
                p = arena.allocate(8 + 32L * regions);
                p.set(U32, 0, regions);
                for (int i = 0; i < regions; i++) {
                    region(p, 8 + 32L * i, data);
                    fds.add(guest.fd().duplicate());
                }
                return p;
            }
            case SINGLE_MEM_REGION -> {
                p = arena.allocate(length);
                region(p, 8, data);
                fds.add(guest.fd().duplicate());
                return p;
            }
            case VRING_STATE -> {
                p = arena.allocate(length);
                p.set(U32, 0, data.consumeInt(0, 7) == 0 ? data.consumeInt() : data.consumeInt(0, 2));
                p.set(U32, 4, data.consumeInt(0, 7) == 0 ? data.consumeInt() : data.consumeInt(0, 512));
            }
            case VRING_ADDR -> {
                p = arena.allocate(length);
                p.set(U32, 0, data.consumeInt(0, 7) == 0 ? data.consumeInt() : data.consumeInt(0, 2));
                p.set(U32, 4, data.consumeInt(0, 1));
                for (int i = 0; i < 4; i++) {
                    long a = data.consumeBoolean() ? Rig.USER_BASE + (data.consumeLong(0, RAM - 1) & ~0xFL)
                            : data.consumeBoolean() ? Rig.GUEST_BASE + (data.consumeLong(0, RAM - 1) & ~0xFL)
                                    : data.consumeLong();
                    p.set(U64, 8 + 8L * i, a);
                }
            }
            case U64 -> {
                p = arena.allocate(8);
                long v = switch (data.consumeInt(0, 3)) {
                    case 0 -> backend.offeredFeatures() & data.consumeLong();
                    case 1 -> backend.offeredProtocolFeatures() & data.consumeLong();
                    case 2 -> data.consumeInt(0, 2) | (data.consumeBoolean() ? 0x100 : 0);
                    default -> data.consumeLong();
                };
                p.set(U64, 0, v);
                if (r == FrontendRequest.SET_VRING_KICK || r == FrontendRequest.SET_VRING_CALL
                        || r == FrontendRequest.SET_VRING_ERR) {
                    if ((v & 0x100) == 0) {
                        EventFd e = held.eventFd();
                        if (r == FrontendRequest.SET_VRING_KICK) {
                            held.kicks.add(e);
                        }
                        fds.add(e.owner().duplicate());
                    }
                }
            }
            case LOG, INFLIGHT -> {
                p = arena.allocate(length);
                long mapSize = data.consumeBoolean() ? data.consumeLong(0, 1 << 16) : data.consumeLong();
                p.set(U64, 0, mapSize);
                p.set(U64, 8, data.consumeBoolean() ? 0 : data.consumeLong());
                if (type == PayloadType.INFLIGHT) {
                    p.set(U16, 16, (short) data.consumeInt(0, 3));
                    p.set(U16, 18, (short) data.consumeInt(0, 512));
                }
                fds.add(held.memfd(data.consumeInt(0, 1 << 16)));
            }
            case DEVICE_STATE_TRANSFER -> {
                p = arena.allocate(length);
                p.set(U32, 0, data.consumeInt(0, 2));
                p.set(U32, 4, data.consumeInt(0, 1));
                fds.add(held.stateSocket(data.consumeBytes(data.consumeInt(0, 256))));
            }
            default -> {
                byte[] raw = data.consumeBytes(data.consumeInt(type.minBytes(), Math.min(type.maxBytes(), 300)));
                p = arena.allocate(Math.max(length, raw.length));
                MemorySegment.copy(raw, 0, p, ValueLayout.JAVA_BYTE, 0, raw.length);
            }
        }
        if (r.rules().minRequestFds() > fds.size()) {
            // SET_LOG_FD, SET_BACKEND_REQ_FD, GPU_SET_SOCKET: a socket the back-end may write to.
            fds.add(held.socket());
        }
        return p;
    }

    /** One memory region descriptor: guest address, size, user address, mmap offset. */
    private static void region(MemorySegment p, long at, FuzzedDataProvider data) {
        boolean plain = data.consumeInt(0, 3) != 0;
        p.set(U64, at, plain ? Rig.GUEST_BASE : data.consumeLong());
        p.set(U64, at + 8, plain ? RAM : data.consumeLong());
        p.set(U64, at + 16, plain ? Rig.USER_BASE : data.consumeLong());
        p.set(U64, at + 24, plain ? 0 : data.consumeLong());
    }

    /** The fds this side created for one input; all closed when the input ends. */
    private static final class Held implements AutoCloseable {
        final List<EventFd> kicks = new ArrayList<>();
        final List<AutoCloseable> open = new ArrayList<>();

        EventFd eventFd() throws IOException {
            EventFd e = EventFd.create();
            open.add(e);
            return e;
        }

        OwnedFd memfd(long bytes) throws IOException {
            OwnedFd fd = MemFd.create("fuzz", Math.max(bytes, 4096));
            open.add(fd);
            return fd.duplicate();
        }

        /** A socket whose peer already wrote {@code bytes} and hung up: a state transfer that ends. */
        OwnedFd stateSocket(byte[] bytes) throws IOException {
            MessageChannel.Pair p = MessageChannel.pair();
            try (MessageChannel writer = p.channel()) {
                if (bytes.length > 0) {
                    writer.write(MemorySegment.ofArray(bytes));
                }
            }
            open.add(p.peerFd());
            return p.peerFd().duplicate();
        }

        OwnedFd socket() throws IOException {
            MessageChannel.Pair p = MessageChannel.pair();
            open.add(p.channel());
            open.add(p.peerFd());
            return p.peerFd().duplicate();
        }

        @Override
        public void close() {
            for (AutoCloseable c : open) {
                try {
                    c.close();
                } catch (Exception e) {
                    throw new AssertionError(e);
                }
            }
        }
    }
}
