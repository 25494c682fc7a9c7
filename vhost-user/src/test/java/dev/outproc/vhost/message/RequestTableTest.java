package dev.outproc.vhost.message;

import dev.outproc.core.virtio.VirtioFeature;
import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The request and feature tables match the numbering of vhost-user.rst. */
class RequestTableTest {
    @Test
    void frontendRequestsShouldBeNumberedOneToFortyFourWithoutGaps() {
        assertEquals(44, FrontendRequest.values().length);
        for (int code = 1; code <= 44; code++) {
            assertEquals(code, FrontendRequest.ofCode(code).code());
        }
        assertNull(FrontendRequest.ofCode(0));
        assertNull(FrontendRequest.ofCode(45));
        assertNull(FrontendRequest.ofCode(-1));
        assertSame(FrontendRequest.SET_VRING_ENABLE, FrontendRequest.ofCode(18));
        assertSame(FrontendRequest.GPU_SET_SOCKET, FrontendRequest.ofCode(33));
        assertSame(FrontendRequest.GET_SHMEM_CONFIG, FrontendRequest.ofCode(44));
        assertEquals("VHOST_USER_SET_BACKEND_REQ_FD", FrontendRequest.ofCode(21).specName());
    }

    @Test
    void backendRequestsShouldBeNumberedOneToTen() {
        assertEquals(10, BackendRequest.values().length);
        for (int code = 1; code <= 10; code++) {
            assertEquals(code, BackendRequest.ofCode(code).code());
        }
        assertNull(BackendRequest.ofCode(11));
        assertSame(BackendRequest.SHARED_OBJECT_LOOKUP, BackendRequest.ofCode(8));
        assertEquals("VHOST_USER_BACKEND_SHMEM_UNMAP", BackendRequest.SHMEM_UNMAP.specName());
    }

    @Test
    void protocolFeatureBitsShouldFollowTheSpecificationIncludingTheNewestThree() {
        assertEquals(23, ProtocolFeature.values().length);
        Set<Integer> bits = new HashSet<>();
        for (ProtocolFeature f : ProtocolFeature.values()) {
            assertTrue(bits.add(f.bit()), "duplicate bit " + f.bit());
            assertSame(f, ProtocolFeature.ofBit(f.bit()));
            assertEquals(1L << f.bit(), f.mask());
        }
        assertEquals(0, ProtocolFeature.MQ.bit());
        assertEquals(5, ProtocolFeature.BACKEND_REQ.bit());
        assertEquals(15, ProtocolFeature.CONFIGURE_MEM_SLOTS.bit());
        assertEquals(19, ProtocolFeature.DEVICE_STATE.bit());
        assertEquals(20, ProtocolFeature.GET_VRING_BASE_INFLIGHT.bit());
        assertEquals(21, ProtocolFeature.GPA_ADDRESSES.bit());
        assertEquals(22, ProtocolFeature.SHMEM.bit());
        assertEquals(0x7F_FFFFL, ProtocolFeature.KNOWN_MASK);
    }

    @Test
    void virtioFeatureBitsShouldMatchVirtioAndVhost() {
        assertEquals(30, VhostUserFeature.PROTOCOL_FEATURES.bit());
        assertEquals(26, VhostUserFeature.LOG_ALL.bit());
        assertEquals(32, VirtioFeature.VERSION_1.bit());
        assertEquals(33, VirtioFeature.ACCESS_PLATFORM.bit());
        assertEquals(34, VirtioFeature.RING_PACKED.bit());
        assertEquals(35, VirtioFeature.IN_ORDER.bit());
        assertEquals(29, VirtioFeature.EVENT_IDX.bit());
        assertEquals(28, VirtioFeature.INDIRECT_DESC.bit());
        assertEquals(24, VirtioFeature.NOTIFY_ON_EMPTY.bit());
        assertEquals(27, VirtioFeature.ANY_LAYOUT.bit());
        assertEquals(38, VirtioFeature.NOTIFICATION_DATA.bit());
        assertEquals(40, VirtioFeature.RING_RESET.bit());
        assertEquals(1L << 32 | 1L << 30, VirtioFeature.maskOf(VirtioFeature.VERSION_1) | VhostUserFeature.PROTOCOL_FEATURES.mask());
        assertEquals(26, VhostUserFeature.LOG_ALL.bit());
    }

    @Test
    void requestsThatAlwaysReplyShouldMatchTheSpecification() {
        Set<FrontendRequest> always = new HashSet<>();
        for (FrontendRequest r : FrontendRequest.values()) {
            if (r.alwaysReplies()) {
                always.add(r);
            }
        }
        assertEquals(Set.of(FrontendRequest.GET_FEATURES, FrontendRequest.GET_PROTOCOL_FEATURES, FrontendRequest.GET_VRING_BASE,
                FrontendRequest.SET_LOG_BASE, FrontendRequest.GET_INFLIGHT_FD, FrontendRequest.GET_QUEUE_NUM,
                FrontendRequest.IOTLB_MSG, FrontendRequest.GET_CONFIG, FrontendRequest.CREATE_CRYPTO_SESSION,
                FrontendRequest.POSTCOPY_ADVISE, FrontendRequest.POSTCOPY_END, FrontendRequest.GET_MAX_MEM_SLOTS,
                FrontendRequest.GET_STATUS, FrontendRequest.GET_SHARED_OBJECT, FrontendRequest.SET_DEVICE_STATE_FD,
                FrontendRequest.CHECK_DEVICE_STATE, FrontendRequest.GET_SHMEM_CONFIG), always);
    }

    @Test
    void streamsShouldKnowTheirFdLimits() {
        assertEquals(MemTable.MAX_REGIONS, MessageStream.FRONTEND_REQUESTS.maxFds());
        assertEquals(1, MessageStream.BACKEND_REPLIES.maxFds());
        assertEquals(1, MessageStream.BACKEND_REQUESTS.maxFds());
        assertEquals(1, MessageStream.FRONTEND_REPLIES.maxFds());
    }

    @Test
    void vringIndexHelpersShouldEncodeTheDocumentedBits() {
        assertEquals(0x105, VringFdIndex.encode(5, true));
        assertEquals(5, VringFdIndex.index(0x105));
        assertTrue(VringFdIndex.noFd(0x105));
        long packed = VringDescriptorIndices.packed(0x7FFF, true, 0x1234, false);
        assertEquals(0x1234_FFFFL, packed);
        assertEquals(0x7FFF, VringDescriptorIndices.packedAvailIndex(packed));
        assertTrue(VringDescriptorIndices.packedAvailWrap(packed));
        assertEquals(0x1234, VringDescriptorIndices.packedUsedIndex(packed));
        assertEquals(0x8000_0000L, VringDescriptorIndices.packed(0, false, 0, true));
        assertTrue(VringDescriptorIndices.isValidSplit(0xFFFF));
        assertTrue(!VringDescriptorIndices.isValidSplit(0x1_0000));
    }
}
