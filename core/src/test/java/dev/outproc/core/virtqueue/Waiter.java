package dev.outproc.core.virtqueue;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.internal.linux.Linux;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** Waits for an eventfd with a timeout (epoll), so a lost wakeup shows up as a timeout instead of a hang. */
final class Waiter implements AutoCloseable {
    private final EventFd eventFd;
    private final OwnedFd epoll;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment events;

    Waiter(EventFd eventFd) throws Exception {
        this.eventFd = eventFd;
        this.epoll = OwnedFd.of(Linux.epollCreate1(Linux.EPOLL_CLOEXEC));
        Linux.epollCtl(epoll.get(), Linux.EPOLL_CTL_ADD, eventFd.fd(), Linux.EPOLLIN, 0);
        this.events = arena.allocate(Linux.EPOLL_EVENT_SIZE * 4, 8);
    }

    /** {@return true when signalled (the counter is drained), false on timeout} */
    boolean await(int timeoutMillis) throws Exception {
        int n = Linux.epollWait(epoll.get(), events, 4, timeoutMillis);
        if (n > 0) {
            eventFd.drain();
            return true;
        }
        return false;
    }

    @Override
    public void close() {
        epoll.close();
        arena.close();
    }
}
