package dev.outproc.vhost.backend;

import dev.outproc.vhost.message.VhostUserFeature;
import dev.outproc.core.event.EventFd;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.virtqueue.DriverQueue;
import dev.outproc.core.virtqueue.GpaAllocator;
import dev.outproc.core.virtqueue.PackedDriverQueue;
import dev.outproc.core.virtqueue.QueueConfig;
import dev.outproc.core.virtqueue.SplitDriverQueue;
import dev.outproc.vhost.frontend.VhostUserFrontend;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.LockSupport;

import static dev.outproc.core.memory.Layouts.LE_U32;
import static dev.outproc.core.memory.Layouts.LE_U64;

/**
 * A test front-end over {@link VhostUserFrontend} that exposes every step: guest memory in one or more
 * memfd regions, rings programmed message by message (user or guest-physical addresses, kick/call by fd,
 * in-band or none), and block requests in page-aligned slots (header page, data pages, status page) so
 * that dirty-log and guard checks can reason about pages.
 */
final class Rig implements AutoCloseable {
    static final long GUEST_BASE = 0x4000_0000L;
    static final long USER_BASE = 0x7f00_0000_0000L;
    static final int PAGE = 4096;

    VhostUserFrontend fe;
    final List<GuestRegion> regions = new ArrayList<>();
    GuestMemory memory;
    final GpaAllocator allocator;
    final List<Ring> rings = new ArrayList<>();

    /** A running server on a socket, served on a daemon thread. */
    record Served(VhostUserServer server, Thread thread) implements AutoCloseable {
        @Override
        public void close() throws InterruptedException {
            server.close();
            thread.join(10_000);
        }
    }

    static Served serve(Path socket, VhostUserDevice device) throws IOException {
        VhostUserServer server = VhostUserServer.listen(device, new VhostUserBackend.Options(1, false), socket);
        Thread t = Thread.ofPlatform().daemon(true).name("test-vhost-server").start(server::run);
        return new Served(server, t);
    }

    Rig(VhostUserFrontend fe, long memoryBytes) throws IOException {
        this.fe = fe;
        fe.setReplyTimeoutMillis(10_000);
        GuestRegion region = GuestRegion.allocate(GUEST_BASE, memoryBytes, USER_BASE);
        regions.add(region);
        this.memory = GuestMemory.of(regions);
        this.allocator = new GpaAllocator(GUEST_BASE, GUEST_BASE + memoryBytes);
    }

    static Rig connect(Path socket, long memoryBytes) throws IOException {
        VhostUserFrontend fe = VhostUserFrontend.connect(socket);
        try {
            return new Rig(fe, memoryBytes);
        } catch (IOException | RuntimeException e) {
            fe.close();
            throw e;
        }
    }

    /** Drops the connection (the guest memory and rings stay) and connects again. */
    void reconnect(Path socket) throws IOException {
        fe.close();
        fe = VhostUserFrontend.connect(socket);
        fe.setReplyTimeoutMillis(10_000);
    }

    /**
     * Negotiates like {@link VhostUserFrontend#negotiate} but can leave F_PROTOCOL_FEATURES off.
     *
     * @return the acknowledged virtio features
     */
    long negotiate(long features, boolean protocolFeaturesBit, long protocolFeatures) throws IOException {
        if (protocolFeaturesBit) {
            return fe.negotiate(features, protocolFeatures);
        }
        long offered = fe.getFeatures();
        fe.setOwner();
        long acked = offered & features & ~dev.outproc.vhost.message.VhostUserFeature.PROTOCOL_FEATURES.mask();
        fe.setFeatures(acked);
        return acked;
    }

    /** Adds a second (third...) region right after the last one in both address spaces. */
    GuestRegion addRegion(long bytes) throws IOException {
        GuestRegion last = regions.get(regions.size() - 1);
        long gpa = last.guestPhysAddr() + last.sizeBytes() + (1 << 20);
        long user = last.userAddr() + last.sizeBytes() + (1 << 20);
        GuestRegion r = GuestRegion.allocate(gpa, bytes, user);
        regions.add(r);
        memory = GuestMemory.of(regions);
        return r;
    }

    /** One ring with its notifiers and request slots. */
    final class Ring {
        final int index;
        final DriverQueue dq;
        final boolean packed;
        final long[] slotGpa;
        final int[] idOfSlot;
        final int maxData;
        EventFd kick;
        EventFd call;
        EventFd err;
        boolean inbandKick;

        Ring(int index, DriverQueue dq, boolean packed, int slots, int maxData) {
            this.index = index;
            this.dq = dq;
            this.packed = packed;
            this.maxData = maxData;
            this.slotGpa = new long[slots];
            this.idOfSlot = new int[slots];
            java.util.Arrays.fill(idOfSlot, -1);
            for (int i = 0; i < slots; i++) {
                slotGpa[i] = allocator.allocate(PAGE + maxData + PAGE, PAGE);
            }
        }

        long headerGpa(int slot) {
            return slotGpa[slot];
        }

        long dataGpa(int slot) {
            return slotGpa[slot] + PAGE;
        }

        long statusGpa(int slot) {
            return slotGpa[slot] + PAGE + maxData;
        }

        MemorySegment data(int slot) throws IOException {
            return memory.slice(dataGpa(slot), maxData);
        }

        int status(int slot) throws IOException {
            return memory.slice(statusGpa(slot), 1).get(ValueLayout.JAVA_BYTE, 0) & 0xff;
        }

        /** Posts a request in a slot; returns the chain id. */
        int submit(int slot, int type, long sector, int bytes, boolean deviceWrites, boolean indirect) throws IOException {
            return submitAt(slot, type, sector, dataGpa(slot), bytes, deviceWrites, indirect);
        }

        /** Posts a request in a slot whose data lies at {@code dataGpa}; returns the chain id. */
        int submitAt(int slot, int type, long sector, long dataGpa, int bytes, boolean deviceWrites, boolean indirect)
                throws IOException {
            MemorySegment h = memory.slice(headerGpa(slot), 16);
            h.set(LE_U32, 0, type);
            h.set(LE_U32, 4, 0);
            h.set(LE_U64, 8, sector);
            memory.slice(statusGpa(slot), 1).set(ValueLayout.JAVA_BYTE, 0, (byte) 0xff);
            dq.add(headerGpa(slot), 16, false);
            if (bytes > 0) {
                dq.add(dataGpa, bytes, deviceWrites);
            }
            dq.add(statusGpa(slot), 1, true);
            int id = dq.post(indirect);
            if (id < 0) {
                dq.clearStaged();
                throw new IOException("ring " + index + " full");
            }
            idOfSlot[slot] = id;
            return id;
        }

        void kick() throws IOException {
            dq.publish();
            if (dq.kickNeeded()) {
                signalKick();
            }
        }

        /**
         * Publishes and kicks whatever EVENT_IDX says (a driver may kick more often than asked), so that the
         * device's {@code processQueue} runs again for certain: a run still in progress may otherwise take the new
         * chain in its last look at the ring, and the driver then owes no kick.
         */
        void kickUnconditionally() throws IOException {
            dq.publish();
            signalKick();
        }

        private void signalKick() throws IOException {
            if (inbandKick) {
                fe.kickInband(index);
            } else if (kick != null) {
                kick.signal();
            }
        }

        /** Polls for the next completion; returns its slot. */
        int await(long timeoutMillis) throws IOException {
            int slot = poll(timeoutMillis);
            if (slot < 0) {
                throw new IOException("no completion on ring " + index + " within " + timeoutMillis + " ms");
            }
            return slot;
        }

        /** Polls for the next completion; returns its slot or -1 after the wait. */
        int poll(long timeoutMillis) throws IOException {
            long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
            while (true) {
                long used = dq.pollUsed();
                if (used != DriverQueue.NONE) {
                    int id = DriverQueue.usedId(used);
                    for (int s = 0; s < idOfSlot.length; s++) {
                        if (idOfSlot[s] == id) {
                            idOfSlot[s] = -1;
                            return s;
                        }
                    }
                    throw new IOException("completed id " + id + " is in no slot");
                }
                if (System.nanoTime() - deadline > 0) {
                    return -1;
                }
                LockSupport.parkNanos(50_000);
            }
        }

        /** Writes {@code data} at {@code sector} and waits for it. */
        int write(int slot, long sector, byte[] data) throws IOException {
            MemorySegment.copy(data, 0, data(slot), ValueLayout.JAVA_BYTE, 0, data.length);
            submit(slot, RamBlkDevice.T_OUT, sector, data.length, false, false);
            kick();
            return status(await(10_000));
        }

        /** Reads into {@code into} from {@code sector}. */
        int read(int slot, long sector, byte[] into) throws IOException {
            submit(slot, RamBlkDevice.T_IN, sector, into.length, true, false);
            kick();
            int s = await(10_000);
            MemorySegment.copy(data(slot), ValueLayout.JAVA_BYTE, 0, into, 0, into.length);
            return status(s);
        }
    }

    /** Lays out a ring in guest memory (not yet programmed). */
    Ring ring(int index, int size, long features, int slots, int maxData) throws IOException {
        boolean packed = (features & QueueConfig.F_RING_PACKED) != 0;
        long qf = features & (QueueConfig.F_EVENT_IDX | QueueConfig.F_INDIRECT_DESC | QueueConfig.F_RING_PACKED);
        int maxIndirect = (features & QueueConfig.F_INDIRECT_DESC) != 0 ? 4 : 0;
        // Each ring part on its own page, so page-level checks can tell them apart.
        allocator.allocate(0, PAGE);
        DriverQueue dq = packed
                ? PackedDriverQueue.allocate("rig-" + index, memory, allocator, size, qf, maxIndirect)
                : SplitDriverQueue.allocate("rig-" + index, memory, allocator, size, qf, maxIndirect);
        Ring r = new Ring(index, dq, packed, slots, maxData);
        rings.add(r);
        return r;
    }

    long user(long gpa) throws IOException {
        return VhostUserFrontend.userAddr(memory, gpa);
    }

    /** How a ring is programmed. */
    record Setup(boolean gpaAddresses, boolean logUsed, boolean kickFd, boolean callFd, boolean errFd, boolean enable) {
        static Setup standard() {
            return new Setup(false, false, true, true, true, true);
        }

        Setup withGpa() {
            return new Setup(true, logUsed, kickFd, callFd, errFd, enable);
        }

        Setup withLogUsed() {
            return new Setup(gpaAddresses, true, kickFd, callFd, errFd, enable);
        }

        Setup withoutKickFd() {
            return new Setup(gpaAddresses, logUsed, false, callFd, errFd, enable);
        }

        Setup withoutCallFd() {
            return new Setup(gpaAddresses, logUsed, kickFd, false, errFd, enable);
        }

        Setup withoutEnable() {
            return new Setup(gpaAddresses, logUsed, kickFd, callFd, errFd, false);
        }
    }

    /** Programs a ring: NUM, ADDR, BASE, CALL, ERR, KICK, ENABLE as {@code setup} says. */
    void program(Ring r, Setup setup, int base) throws IOException {
        QueueConfig c = r.dq.config();
        fe.setVringNum(r.index, c.size());
        // The device writes the used ring (split) or used descriptors in the descriptor ring (packed): that
        // is what log_guest_addr names.
        long logAddr = r.packed ? c.descAddr() : c.deviceAddr();
        if (setup.gpaAddresses()) {
            fe.setVringAddr(r.index, c.descAddr(), c.deviceAddr(), c.driverAddr(), setup.logUsed(), logAddr);
        } else {
            fe.setVringAddr(r.index, user(c.descAddr()), user(c.deviceAddr()), user(c.driverAddr()), setup.logUsed(),
                    logAddr);
        }
        fe.setVringBase(r.index, base);
        closeNotifiers(r);
        r.call = setup.callFd() ? EventFd.create() : null;
        fe.setVringCall(r.index, r.call);
        if (setup.errFd()) {
            r.err = EventFd.create();
            fe.setVringErr(r.index, r.err);
        }
        r.kick = setup.kickFd() ? EventFd.create() : null;
        fe.setVringKick(r.index, r.kick);
        if (setup.enable()) {
            fe.setVringEnable(r.index, true);
        }
    }

    void program(Ring r, Setup setup) throws IOException {
        program(r, setup, r.packed ? 1 << 15 : 0);
    }

    private static void closeNotifiers(Ring r) {
        for (EventFd e : new EventFd[] {r.kick, r.call, r.err}) {
            if (e != null) {
                e.close();
            }
        }
        r.kick = null;
        r.call = null;
        r.err = null;
    }

    /** Shares every region with SET_MEM_TABLE. */
    void setMemTable() throws IOException {
        fe.setMemTable(memory);
    }

    @Override
    public void close() {
        fe.close();
        for (Ring r : rings) {
            closeNotifiers(r);
        }
        for (GuestRegion g : regions) {
            g.close();
        }
    }
}
