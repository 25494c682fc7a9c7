package dev.outproc.vhost.frontend;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.vhost.message.BackendRequest;
import dev.outproc.vhost.message.VhostUserHeader;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;

import java.io.File;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The front-end's end of the back-end channel under a hostile back-end: the fuzzer's bytes become a
 * sequence of back-end requests (known numbers or any, flags with and without NEED_REPLY, payloads of the
 * right size or not, fds attached or not) written on the socket that SET_BACKEND_REQ_FD would carry, then
 * the back-end hangs up. The reader must end on that hang-up without any throwable escaping its thread
 * (a handler that throws must cost only an EIO reply), and every fd that came with the messages must be
 * closed.
 */
class BackendChannelFuzzTest {
    private static final List<Throwable> uncaught = new CopyOnWriteArrayList<>();

    static {
        Thread.setDefaultUncaughtExceptionHandler((t, e) -> uncaught.add(e));
    }

    @FuzzTest(maxDuration = "30s")
    void readArbitraryBackendRequests(FuzzedDataProvider data) throws Exception {
        int fdsBefore = fdCount();
        AtomicInteger calls = new AtomicInteger();
        // The handler counts, and refuses some calls, so that the reader's EIO path runs too.
        VhostUserFrontend.BackendRequestHandler handler = new VhostUserFrontend.BackendRequestHandler() {
            @Override
            public void configChanged() {
                calls.incrementAndGet();
            }

            @Override
            public void vringCall(int index) {
                calls.incrementAndGet();
                if (index < 0) {
                    throw new IllegalArgumentException("a handler that refuses: index " + index);
                }
            }

            @Override
            public void iotlbMiss(long iova, int access) {
                calls.incrementAndGet();
            }
        };
        MessageChannel.Pair pair = MessageChannel.pair();
        BackendChannelReader reader = new BackendChannelReader(pair.channel(), handler);
        try (MessageChannel backend = MessageChannel.adopt(pair.peerFd()); Arena arena = Arena.ofConfined()) {
            for (int i = 0; i < 32 && data.remainingBytes() > 0; i++) {
                int pick = data.consumeInt(0, BackendRequest.values().length + 1);
                long code = pick >= BackendRequest.values().length ? data.consumeInt() & 0xFFFF_FFFFL : BackendRequest.values()[pick].code();
                long flags = data.consumeInt(0, 7) == 0 ? data.consumeInt() & 0xFFFF_FFFFL
                        : VhostUserHeader.VERSION | (data.consumeBoolean() ? VhostUserHeader.NEED_REPLY_FLAG : 0);
                byte[] payload = data.consumeBytes(data.consumeInt(0, 96));
                int size = data.consumeInt(0, 15) == 0 ? data.consumeInt(0, 0x1000) : payload.length;
                MemorySegment m = arena.allocate(VhostUserHeader.ENCODED_LENGTH + payload.length);
                new VhostUserHeader.Encoder().wrap(m, 0).request(code).flags(flags).size(size);
                MemorySegment.copy(payload, 0, m, ValueLayout.JAVA_BYTE, VhostUserHeader.ENCODED_LENGTH, payload.length);
                List<OwnedFd> fds = new ArrayList<>();
                List<EventFd> events = new ArrayList<>();
                for (int n = data.consumeInt(0, 2); n > 0; n--) {
                    EventFd e = EventFd.create();
                    events.add(e);
                    fds.add(e.owner());
                }
                try {
                    backend.write(m, fds);
                } catch (IOException closed) {
                    break; // the front-end hung up on a broken message: allowed
                } finally {
                    events.forEach(EventFd::close);
                }
            }
        } finally {
            // The back-end hung up: the reader must see it and end.
            reader.close();
        }
        if (!uncaught.isEmpty()) {
            Throwable t = uncaught.get(0);
            uncaught.clear();
            throw new AssertionError("a throwable escaped the back-end channel reader: " + t, t);
        }
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.getName().equals("vhost-user-backend-channel") && t.isAlive()) {
                t.join(5_000);
                if (t.isAlive()) {
                    throw new AssertionError("the back-end channel reader did not end after the hang-up");
                }
            }
        }
        int after = fdCount();
        for (int i = 0; i < 100 && after != fdsBefore; i++) {
            Thread.sleep(20);
            after = fdCount();
        }
        if (after != fdsBefore) {
            throw new AssertionError("fds before: " + fdsBefore + ", after the channel ended: " + after);
        }
    }

    private static int fdCount() {
        String[] names = new File("/proc/self/fd").list();
        if (names == null) {
            throw new IllegalStateException("/proc/self/fd is not readable");
        }
        return names.length - 1;
    }
}
