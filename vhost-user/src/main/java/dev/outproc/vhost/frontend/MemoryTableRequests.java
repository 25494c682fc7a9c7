package dev.outproc.vhost.frontend;

import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.vhost.connection.VhostUserMessage;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.LogDescription;
import dev.outproc.vhost.message.MemTable;
import dev.outproc.vhost.message.MemoryRegion;
import dev.outproc.vhost.message.SingleMemRegion;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The front-end's memory requests: SET_MEM_TABLE, ADD_MEM_REG and REM_MEM_REG (CONFIGURE_MEM_SLOTS), and
 * SET_LOG_BASE (LOG_SHMFD). Every region travels with its fd; the payloads are encoded in place through
 * the message flyweights.
 */
final class MemoryTableRequests {
    /** SET_MEM_TABLE's region count limit (VHOST_MEMORY_BASELINE_NREGIONS). */
    private static final int MAX_REGIONS = 8;

    private final RequestChannel io;
    private final MemTable.Encoder memTable = new MemTable.Encoder();
    private final SingleMemRegion.Encoder singleRegion = new SingleMemRegion.Encoder();
    private final LogDescription.Encoder logDescription = new LogDescription.Encoder();

    MemoryTableRequests(RequestChannel io) {
        this.io = io;
    }

    void setMemTable(GuestMemory memory) throws IOException {
        List<GuestRegion> regions = memory.regions();
        if (regions.isEmpty() || regions.size() > MAX_REGIONS) {
            throw new IllegalArgumentException("SET_MEM_TABLE carries 1.." + MAX_REGIONS + " regions, regions="
                    + regions.size());
        }
        int size = MemTable.encodedLength(regions.size());
        memTable.wrap(io.body(size), 0).nregions(regions.size());
        List<OwnedFd> fds = new ArrayList<>(regions.size());
        for (int i = 0; i < regions.size(); i++) {
            GuestRegion region = regions.get(i);
            encodeRegion(memTable.region(i), region);
            fds.add(requireFd(region));
        }
        io.send(FrontendRequest.SET_MEM_TABLE, size, fds);
    }

    void addMemRegion(GuestRegion region) throws IOException {
        io.send(FrontendRequest.ADD_MEM_REG, encodeSingleRegion(region), List.of(requireFd(region)));
    }

    void removeMemRegion(GuestRegion region) throws IOException {
        io.send(FrontendRequest.REM_MEM_REG, encodeSingleRegion(region), List.of());
    }

    void setLogBase(OwnedFd fd, long sizeBytes, long offset) throws IOException {
        logDescription.wrap(io.body(LogDescription.ENCODED_LENGTH), 0).mmapSize(sizeBytes).mmapOffset(offset);
        try (VhostUserMessage m = io.call(FrontendRequest.SET_LOG_BASE, LogDescription.ENCODED_LENGTH, List.of(fd))) {
            long status = m.payloadU64();
            if (status != 0) {
                throw new FrontendException(status, "SET_LOG_BASE refused, status=" + status);
            }
        }
    }

    private int encodeSingleRegion(GuestRegion region) {
        encodeRegion(singleRegion.wrap(io.body(SingleMemRegion.ENCODED_LENGTH), 0).region(), region);
        return SingleMemRegion.ENCODED_LENGTH;
    }

    private static void encodeRegion(MemoryRegion.Encoder encoder, GuestRegion region) {
        encoder.guestPhysAddr(region.guestPhysAddr()).memorySize(region.sizeBytes()).userAddr(region.userAddr())
                .mmapOffset(region.mmapOffset());
    }

    private static OwnedFd requireFd(GuestRegion region) {
        if (region.fd() == null) {
            throw new IllegalArgumentException("region has no fd to share: " + region);
        }
        return region.fd();
    }
}
