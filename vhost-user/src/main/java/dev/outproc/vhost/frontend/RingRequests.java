package dev.outproc.vhost.frontend;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestMemoryException;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.virtqueue.DriverQueue;
import dev.outproc.core.virtqueue.QueueConfig;
import dev.outproc.vhost.connection.VhostUserMessage;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.U64Payload;
import dev.outproc.vhost.message.VringAddr;
import dev.outproc.vhost.message.VringFdIndex;
import dev.outproc.vhost.message.VringState;

import java.io.IOException;
import java.util.List;

/**
 * The front-end's ring requests (SET_VRING_NUM, _ADDR, _BASE, _KICK, _CALL, _ERR, _ENABLE, GET_VRING_BASE,
 * VRING_KICK) and the sequence that programs a ring from a driver-side queue.
 */
final class RingRequests {
    private final RequestChannel io;
    private final VringAddr.Encoder vringAddr = new VringAddr.Encoder();
    private final VringState.Decoder vringStateReply = new VringState.Decoder();

    RingRequests(RequestChannel io) {
        this.io = io;
    }

    void setVringNum(int index, int size) throws IOException {
        io.sendState(FrontendRequest.SET_VRING_NUM, index, size);
    }

    void setVringAddr(int index, long descUserAddr, long usedUserAddr, long availUserAddr, boolean logUsed,
                      long logGuestAddr) throws IOException {
        vringAddr.wrap(io.body(VringAddr.ENCODED_LENGTH), 0).index(index).flags(logUsed ? VringAddr.F_LOG : 0)
                .descUserAddr(descUserAddr).usedUserAddr(usedUserAddr).availUserAddr(availUserAddr)
                .logGuestAddr(logGuestAddr);
        io.send(FrontendRequest.SET_VRING_ADDR, VringAddr.ENCODED_LENGTH, List.of());
    }

    void setVringBase(int index, int base) throws IOException {
        io.sendState(FrontendRequest.SET_VRING_BASE, index, base);
    }

    long getVringBase(int index) throws IOException {
        io.encodeState(index, 0);
        try (VhostUserMessage m = io.call(FrontendRequest.GET_VRING_BASE, VringState.ENCODED_LENGTH, List.of())) {
            return vringStateReply.wrap(m.payload(), 0).num();
        }
    }

    /** SET_VRING_KICK, _CALL or _ERR: the eventfd travels with the message, or the invalid-fd flag is set. */
    void setVringFd(FrontendRequest request, int index, EventFd fd) throws IOException {
        io.encodeU64(VringFdIndex.encode(index, fd == null));
        io.send(request, U64Payload.ENCODED_LENGTH, fd == null ? List.of() : List.of(fd.owner()));
    }

    void setVringEnable(int index, boolean enabled) throws IOException {
        io.sendState(FrontendRequest.SET_VRING_ENABLE, index, enabled ? 1 : 0);
    }

    void kickInband(int index) throws IOException {
        io.sendState(FrontendRequest.VRING_KICK, index, 0);
    }

    /**
     * Programs a ring in the order real front-ends use (NUM, ADDR, BASE, CALL, KICK, then ENABLE when
     * {@code enable}); the eventfds are closed again when any request fails.
     */
    FrontendQueue start(VhostUserFrontend owner, int index, DriverQueue queue, GuestMemory memory, int base,
                        boolean enable) throws IOException {
        QueueConfig config = queue.config();
        EventFd kick = EventFd.create();
        EventFd call = EventFd.create();
        try {
            setVringNum(index, config.size());
            setVringAddr(index, userAddr(memory, config.descAddr()), userAddr(memory, config.deviceAddr()),
                    userAddr(memory, config.driverAddr()), false, config.deviceAddr());
            setVringBase(index, base);
            setVringFd(FrontendRequest.SET_VRING_CALL, index, call);
            setVringFd(FrontendRequest.SET_VRING_KICK, index, kick);
            if (enable) {
                setVringEnable(index, true);
            }
        } catch (IOException | RuntimeException e) {
            kick.close();
            call.close();
            throw e;
        }
        return new FrontendQueue(owner, index, queue, kick, call);
    }

    static long userAddr(GuestMemory memory, long gpa) throws GuestMemoryException {
        int index = memory.regionIndexOfGpa(gpa, 1);
        if (index < 0) {
            throw new GuestMemoryException("address outside guest memory, gpa=0x" + Long.toHexString(gpa));
        }
        GuestRegion region = memory.region(index);
        return region.userAddr() + (gpa - region.guestPhysAddr());
    }
}
