package dev.outproc.vfio.virtio;

import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtio.VirtioStatus;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link VirtioPciDevice#importState} refuses an inconsistent transport state with a message naming the value, and
 * takes nothing of it. No client is attached, so the DMA space is empty: any enabled ring lies outside it.
 */
class VirtioPciImportStateTest {
    private static final int RUNNING = VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER | VirtioStatus.FEATURES_OK | VirtioStatus.DRIVER_OK;
    private VirtioPciDevice device;

    @BeforeEach
    void start() throws IOException {
        device = new VirtioPciDevice(new RamBlkDevice(2048));
    }

    @AfterEach
    void stop() {
        device.close();
    }

    private VirtioPciState state(UnaryOperator<VirtioPciState.Queue> queue, int status, long features, int configVector) {
        int n = device.device().queueCount();
        List<VirtioPciState.Queue> queues = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            queues.add(queue.apply(new VirtioPciState.Queue(i, 64, false, 1, 0x1000, 0x2000, 0x3000, false, 0, 0, false, false)));
        }
        return new VirtioPciState(0, 0, features, status, 0, configVector, 0, 0, 0, new byte[16 * (n + 1)], queues);
    }

    private void assertRefused(VirtioPciState s, String words) {
        IOException e = assertThrows(IOException.class, () -> device.importState(s));
        assertTrue(e.getMessage().contains(words), e.getMessage());
        assertEquals(0, device.status(), "nothing of a refused state is taken");
    }

    @Test
    void shouldRefuseInconsistentTransportStates() {
        long v1 = VirtioFeature.VERSION_1.mask();
        assertRefused(state(q -> new VirtioPciState.Queue(q.index(), 48, false, 1, 0, 0, 0, false, 0, 0, false, false), 0, v1, 0),
                "queue_size 48");
        assertRefused(state(q -> new VirtioPciState.Queue(q.index(), 1 << 15 << 1, false, 1, 0, 0, 0, false, 0, 0, false, false), 0, v1, 0),
                "queue_size 65536");
        assertRefused(state(q -> new VirtioPciState.Queue(q.index(), 64, true, 1, 0x1000, 0x2000, 0x3000, true, 0, 0, false, false),
                RUNNING, v1, 0), "outside the DMA space");
        assertRefused(state(q -> new VirtioPciState.Queue(q.index(), 64, true, 1, 0x1001, 0x2000, 0x3000, true, 0, 0, false, false),
                RUNNING, v1, 0), "misaligned");
        assertRefused(state(q -> q, 0, v1, 0x700), "config_msix_vector");
        assertRefused(state(q -> new VirtioPciState.Queue(q.index(), 64, false, 0x700, 0, 0, 0, false, 0, 0, false, false), 0, v1, 0),
                "queue_msix_vector");
        assertRefused(state(q -> q, VirtioStatus.DRIVER_OK, v1, 0), "DRIVER_OK but not FEATURES_OK");
        assertRefused(state(q -> q, 0, v1 | (1L << 61), 0), "features not offered");
        assertRefused(state(q -> new VirtioPciState.Queue(q.index(), 64, true, 1, 0x1000, 0x2000, 0x3000, true, 100, 10, false, false),
                RUNNING, v1, 0), "more requests in flight");
        assertRefused(state(q -> new VirtioPciState.Queue(q.index(), 64, true, 1, 0x1000, 0x2000, 0x3000, true, 64, 0, true, true),
                RUNNING, v1 | VirtioFeature.RING_PACKED.mask(), 0), "packed ring slots");
        VirtioPciState fewer = state(q -> q, 0, v1, 0);
        assertRefused(new VirtioPciState(0, 0, v1, 0, 0, 0, 0, 0, 0, fewer.msixTable(), List.of()), "queues for a device of");
    }

    private VirtioPciState withPending(VirtioPciState s, byte[] pending) {
        return new VirtioPciState(s.deviceFeatureSelect(), s.driverFeatureSelect(), s.driverFeatures(), s.deviceStatus(),
                s.queueSelect(), s.configMsixVector(), s.configGeneration(), s.isr(), s.msixControl(), s.msixTable(), s.queues(),
                pending);
    }

    @Test
    void shouldCarryTheMsixPendingBitsAndRefuseOnesBeyondTheTable() throws IOException {
        long v1 = VirtioFeature.VERSION_1.mask();
        int vectors = device.device().queueCount() + 1;
        VirtioPciState base = state(q -> q, 0, v1, 0);
        assertEquals(8, device.exportState().msixPending().length, "one 64-bit word for " + vectors + " vectors");
        assertRefused(withPending(base, new byte[16]), "pending-bit array of 16 bytes");
        byte[] beyond = new byte[8];
        beyond[vectors / 8] |= (byte) (1 << (vectors % 8));
        assertRefused(withPending(base, beyond), "pending bit " + vectors);

        byte[] pending = new byte[8];
        pending[0] = 0b10; // vector 1, the queue's
        device.importState(withPending(base, pending));
        assertTrue(device.pci().msixPending(1));
        assertFalse(device.pci().msixPending(0));
        assertArrayEquals(pending, device.exportState().msixPending());

        device.importState(base); // a state without the array: none pending
        assertFalse(device.pci().msixPending(1));
    }

    @Test
    void shouldTakeAConsistentStateOfAStoppedDriver() throws IOException {
        long v1 = VirtioFeature.VERSION_1.mask();
        int featuresOk = VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER | VirtioStatus.FEATURES_OK;
        device.importState(state(q -> q, featuresOk, v1, 0));
        assertEquals(featuresOk, device.status());
        VirtioPciState back = device.exportState();
        assertEquals(v1, back.driverFeatures());
        assertEquals(64, back.queues().get(0).size());
        assertEquals(0x3000, back.queues().get(0).deviceAddr());
    }
}
