package dev.outproc.vhost.backend;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.memory.Layouts;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.vhost.message.VhostUserHeader;

import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A front-end that hangs up in the middle of a message: after part of a header, after a header whose
 * payload never comes, in the middle of a payload, and after a message's fds arrived with its first bytes
 * but the rest never did (SET_MEM_TABLE with the region's memfd; SET_VRING_KICK with an eventfd). Each time
 * the back-end must drop the connection, close what it received, and serve the next front-end; this
 * process's fds and memfd mappings end where they started.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class CutMessageFaultTest {
    private static final ValueLayout.OfInt U32 = Layouts.LE_U32;
    private static final ValueLayout.OfLong U64 = Layouts.LE_U64;

    @TempDir
    Path dir;

    /** Where the front-end stops. */
    enum Cut {
        PART_OF_HEADER, HEADER_ONLY, PART_OF_PAYLOAD, MEM_TABLE_FDS_THEN_CLOSE, KICK_FD_THEN_CLOSE
    }

    @ParameterizedTest
    @EnumSource(Cut.class)
    void aPeerThatHangsUpInAMessageShouldCostOnlyItsConnection(Cut cut) throws Exception {
        Path socket = dir.resolve("cut.sock");
        try (Rig.Served served = Rig.serve(socket, RamBlkDevice.ram(1 << 20, 1))) {
            useOnce(socket);
            ProcessResources before = ProcessResources.settle(ProcessResources.now());
            for (int round = 0; round < 5; round++) {
                try (MessageChannel ch = MessageChannel.connect(socket);
                     GuestRegion region = GuestRegion.allocate(Rig.GUEST_BASE, 1 << 20, Rig.USER_BASE);
                     EventFd kick = EventFd.create();
                     Arena arena = Arena.ofConfined()) {
                    switch (cut) {
                        case PART_OF_HEADER -> ch.write(header(arena, FrontendRequest.SET_FEATURES, 8).asSlice(0, 7));
                        case HEADER_ONLY -> ch.write(header(arena, FrontendRequest.SET_FEATURES, 8));
                        case PART_OF_PAYLOAD -> {
                            MemorySegment m = message(arena, FrontendRequest.SET_FEATURES, 8);
                            m.set(U64, VhostUserHeader.ENCODED_LENGTH, VirtioFeature.VERSION_1.mask());
                            ch.write(m.asSlice(0, VhostUserHeader.ENCODED_LENGTH + 3));
                        }
                        case MEM_TABLE_FDS_THEN_CLOSE -> {
                            MemorySegment m = message(arena, FrontendRequest.SET_MEM_TABLE, 8 + 32);
                            long p = VhostUserHeader.ENCODED_LENGTH;
                            m.set(U32, p, 1);
                            m.set(U64, p + 8, Rig.GUEST_BASE);
                            m.set(U64, p + 16, 1 << 20);
                            m.set(U64, p + 24, Rig.USER_BASE);
                            try (OwnedFd fd = region.fd().duplicate()) {
                                ch.write(m.asSlice(0, VhostUserHeader.ENCODED_LENGTH + 12), List.of(fd));
                            }
                        }
                        case KICK_FD_THEN_CLOSE -> {
                            MemorySegment m = message(arena, FrontendRequest.SET_VRING_KICK, 8);
                            try (OwnedFd fd = kick.owner().duplicate()) {
                                ch.write(m.asSlice(0, VhostUserHeader.ENCODED_LENGTH + 2), List.of(fd));
                            }
                        }
                        default -> throw new AssertionError(cut);
                    }
                }
                useOnce(socket);
            }
            ProcessResources after = ProcessResources.settle(before);
            System.out.println("CutMessageFaultTest " + cut + " before: " + before + "; after 5 cut connections: " + after);
            assertTrue(after.fds() <= before.fds(), "open fds " + before.fds() + " -> " + after.fds() + " (an fd open before may close meanwhile; more is a leak): " + TestFds.snapshot());
            assertTrue(after.threads() <= before.threads(), "threads " + before.threads() + " -> " + after.threads());
            assertTrue(after.memfdMappings() <= before.memfdMappings(), "memfd mappings " + before.memfdMappings() + " -> " + after.memfdMappings());
        }
    }

    private static MemorySegment header(Arena arena, FrontendRequest r, int size) {
        return message(arena, r, size).asSlice(0, VhostUserHeader.ENCODED_LENGTH);
    }

    private static MemorySegment message(Arena arena, FrontendRequest r, int size) {
        MemorySegment m = arena.allocate(VhostUserHeader.ENCODED_LENGTH + size);
        new VhostUserHeader.Encoder().wrap(m, 0).request(r.code()).flags(VhostUserHeader.VERSION).size(size);
        return m;
    }

    /** A whole front-end session with I/O: the back-end still serves. */
    static void useOnce(Path socket) throws Exception {
        try (Rig rig = Rig.connect(socket, 1L << 20)) {
            long acked = rig.negotiate(VirtioFeature.VERSION_1.mask(), true, ProtocolFeature.REPLY_ACK.mask());
            rig.setMemTable();
            Rig.Ring ring = rig.ring(0, 16, acked, 2, 4096);
            rig.program(ring, Rig.Setup.standard());
            byte[] block = new byte[4096];
            block[3] = 9;
            assertEquals(RamBlkDevice.S_OK, ring.write(0, 8, block));
            byte[] back = new byte[4096];
            assertEquals(RamBlkDevice.S_OK, ring.read(1, 8, back));
            assertEquals(9, back[3]);
        }
    }
}
