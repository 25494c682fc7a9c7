package dev.outproc.vfio.virtio;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.transport.UnixListener;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtio.VirtioStatus;
import dev.outproc.core.virtio.blk.BlkRequestDriver;
import dev.outproc.core.virtio.blk.VirtioBlk;
import dev.outproc.core.virtqueue.DriverQueue;
import dev.outproc.core.virtqueue.GpaAllocator;
import dev.outproc.core.virtqueue.PackedDriverQueue;
import dev.outproc.core.virtqueue.SplitDriverQueue;
import dev.outproc.vfio.client.VfioUserClient;
import dev.outproc.vfio.message.Capabilities;
import dev.outproc.vfio.message.DmaMap;
import dev.outproc.vfio.pci.PciConfigSpace;
import dev.outproc.vfio.pci.PciDevice;
import dev.outproc.vfio.server.Interrupts;
import dev.outproc.vfio.server.ServerOptions;
import dev.outproc.vfio.server.VfioUserServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The virtio-pci transport driven the way a guest driver drives it, through the library's
 * {@link VfioUserClient} over a real socket: capabilities, feature negotiation, queue setup, requests
 * through core's driver-side queue and {@link BlkRequestDriver}, MSI-X and INTx interrupts on eventfds,
 * reset by status 0, and the values a hostile driver writes.
 */
class VirtioPciDeviceTest {
    private static final int BAR = VirtioPciDevice.STRUCTURES_BAR;
    private static final long RAM = 0x100_0000;
    private static final long RAM_BYTES = 0x40_0000;
    private static final long FEATURES = VirtioFeature.maskOf(VirtioFeature.VERSION_1, VirtioFeature.EVENT_IDX)
            | (1L << VirtioBlk.F_FLUSH);

    @TempDir
    Path dir;
    RamBlkDevice blk;
    VirtioPciDevice device;
    UnixListener listener;
    VfioUserServer server;
    Thread serving;
    VfioUserClient client;
    GuestRegion ram;
    GuestMemory memory;
    final List<EventFd> vectors = new ArrayList<>();

    @BeforeEach
    void start() throws Exception {
        blk = new RamBlkDevice(2048);
        device = new VirtioPciDevice(blk);
        Path socket = dir.resolve("virtio.sock");
        listener = UnixListener.bind(socket);
        server = new VfioUserServer(device, ServerOptions.DEFAULTS);
        serving = Thread.ofPlatform().daemon().start(() -> server.serve(listener));
        client = VfioUserClient.connect(socket);
        client.negotiate(Capabilities.builder().maxMsgFds(8).build());
        ram = GuestRegion.allocate(RAM, RAM_BYTES, 0);
        memory = GuestMemory.of(List.of(ram));
        client.dmaMap(RAM, RAM_BYTES, DmaMap.FLAG_READ | DmaMap.FLAG_WRITE, ram.fd(), 0);
    }

    @AfterEach
    void stop() throws Exception {
        if (client != null) {
            client.close();
        }
        listener.close();
        server.disconnectClient();
        serving.join(5000);
        device.close();
        ram.close();
        vectors.forEach(EventFd::close);
    }

    // ---- register access as a driver does it ----

    private long read(int region, long offset, int size) throws IOException {
        MemorySegment s = MemorySegment.ofArray(new byte[size]);
        client.regionRead(region, offset, s);
        long v = 0;
        for (int i = 0; i < size; i++) {
            v |= (s.get(ValueLayout.JAVA_BYTE, i) & 0xFFL) << (8 * i);
        }
        return v;
    }

    private void write(int region, long offset, int size, long value) throws IOException {
        MemorySegment s = MemorySegment.ofArray(new byte[size]);
        for (int i = 0; i < size; i++) {
            s.set(ValueLayout.JAVA_BYTE, i, (byte) (value >>> (8 * i)));
        }
        client.regionWrite(region, offset, s);
    }

    private long common(int field, int size) throws IOException {
        return read(BAR, VirtioPciDevice.COMMON_OFFSET + field, size);
    }

    private void common(int field, int size, long value) throws IOException {
        write(BAR, VirtioPciDevice.COMMON_OFFSET + field, size, value);
    }

    private int status() throws IOException {
        return (int) common(CommonConfig.DEVICE_STATUS, 1);
    }

    /** VIRTIO 1.2 §3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK; returns the status read back. */
    private int negotiate(long features) throws IOException {
        common(CommonConfig.DEVICE_STATUS, 1, 0);
        common(CommonConfig.DEVICE_STATUS, 1, VirtioStatus.ACKNOWLEDGE);
        common(CommonConfig.DEVICE_STATUS, 1, VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER);
        common(CommonConfig.DRIVER_FEATURE_SELECT, 4, 0);
        common(CommonConfig.DRIVER_FEATURE, 4, features & 0xFFFF_FFFFL);
        common(CommonConfig.DRIVER_FEATURE_SELECT, 4, 1);
        common(CommonConfig.DRIVER_FEATURE, 4, features >>> 32);
        common(CommonConfig.DEVICE_STATUS, 1, VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER | VirtioStatus.FEATURES_OK);
        return status();
    }

    private long offered() throws IOException {
        common(CommonConfig.DEVICE_FEATURE_SELECT, 4, 0);
        long low = common(CommonConfig.DEVICE_FEATURE, 4);
        common(CommonConfig.DEVICE_FEATURE_SELECT, 4, 1);
        return low | common(CommonConfig.DEVICE_FEATURE, 4) << 32;
    }

    private int msixCapability() {
        return device.pci().config().capabilityOffsets().get(0);
    }

    /** Enables MSI-X in config space and installs one eventfd per vector (config + queue 0). */
    private void enableMsix() throws IOException {
        for (int i = 0; i < 2; i++) {
            vectors.add(EventFd.create());
        }
        client.setIrqEventFds(Interrupts.MSIX, 0, vectors);
        write(PciDevice.CONFIG_REGION, msixCapability() + 2, 2, 0x8000 | 1);
    }

    /** Programs queue 0 with a driver-side split queue in the client's memory. */
    private SplitDriverQueue setUpQueue(GpaAllocator allocator, int size, int vector) throws Exception {
        return (SplitDriverQueue) setUpQueue(allocator, size, vector, false);
    }

    private DriverQueue setUpQueue(GpaAllocator allocator, int size, int vector, boolean packed) throws Exception {
        DriverQueue queue = packed
                ? PackedDriverQueue.allocate("driver", memory, allocator, size, FEATURES | VirtioFeature.RING_PACKED.mask(), 0)
                : SplitDriverQueue.allocate("driver", memory, allocator, size, FEATURES, 0);
        common(CommonConfig.QUEUE_SELECT, 2, 0);
        common(CommonConfig.QUEUE_SIZE, 2, size);
        common(CommonConfig.QUEUE_DESC, 8, queue.config().descAddr());
        common(CommonConfig.QUEUE_DRIVER, 4, queue.config().driverAddr());
        common(CommonConfig.QUEUE_DRIVER + 4, 4, queue.config().driverAddr() >>> 32);
        common(CommonConfig.QUEUE_DEVICE, 8, queue.config().deviceAddr());
        common(CommonConfig.QUEUE_MSIX_VECTOR, 2, vector);
        common(CommonConfig.QUEUE_ENABLE, 2, 1);
        return queue;
    }

    private BlkRequestDriver blkDriver(DriverQueue queue, GpaAllocator allocator, EventFd interrupt) {
        return new BlkRequestDriver(memory, allocator, queue, new BlkRequestDriver.Doorbell() {
            @Override
            public void publishAndKick() throws IOException {
                queue.publish();
                if (queue.kickNeeded()) {
                    write(BAR, VirtioPciDevice.NOTIFY_OFFSET + (long) VirtioPciDevice.NOTIFY_OFF_MULTIPLIER * 0, 2, 0);
                }
            }

            @Override
            public void awaitNotification(long timeoutMillis) throws IOException {
                awaitSignal(interrupt, timeoutMillis);
            }
        }, 4, 64 * 1024, 5000);
    }

    private static void awaitSignal(EventFd e, long timeoutMillis) throws IOException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        while (e.drain() == 0) {
            if (System.nanoTime() > deadline) {
                throw new IOException("no interrupt within " + timeoutMillis + " ms");
            }
            Thread.onSpinWait();
        }
    }

    // ---- tests ----

    @Test
    void shouldPresentAModernVirtioPciFunctionWithItsStructureCapabilities() throws Exception {
        assertEquals(0x1af4, read(PciDevice.CONFIG_REGION, 0x00, 2));
        assertEquals(0x1042, read(PciDevice.CONFIG_REGION, 0x02, 2), "0x1040 + device type 2");
        assertEquals(1, read(PciDevice.CONFIG_REGION, 0x08, 1), "revision 1: modern only");
        assertEquals(0x1af4, read(PciDevice.CONFIG_REGION, 0x2C, 2));
        assertTrue(read(PciDevice.CONFIG_REGION, 0x2E, 2) >= 0x40, "subsystem id at least 0x40");
        assertEquals(0x04, read(PciDevice.CONFIG_REGION, PciConfigSpace.BAR0 + 4 * BAR, 4) & 0x7, "BAR4 is 64-bit memory");
        int[] seen = new int[6];
        long multiplier = -1;
        int at = (int) read(PciDevice.CONFIG_REGION, PciConfigSpace.CAPABILITIES_POINTER, 1);
        while (at != 0) {
            int id = (int) read(PciDevice.CONFIG_REGION, at, 1);
            if (id == 0x09) {
                int type = (int) read(PciDevice.CONFIG_REGION, at + 3, 1);
                seen[type]++;
                if (type != VirtioPciCapability.PCI_CFG) {
                    assertEquals(BAR, read(PciDevice.CONFIG_REGION, at + 4, 1), "structure " + type + " in BAR4");
                }
                if (type == VirtioPciCapability.NOTIFY_CFG) {
                    multiplier = read(PciDevice.CONFIG_REGION, at + 16, 4);
                    assertEquals(VirtioPciDevice.NOTIFY_OFFSET, read(PciDevice.CONFIG_REGION, at + 8, 4));
                }
                if (type == VirtioPciCapability.COMMON_CFG) {
                    assertTrue(read(PciDevice.CONFIG_REGION, at + 12, 4) >= 56, "common config at least 56 bytes");
                }
            }
            at = (int) read(PciDevice.CONFIG_REGION, at + 1, 1);
        }
        assertArrayEquals(new int[] {0, 1, 1, 1, 1, 1}, seen, "one capability each of COMMON, NOTIFY, ISR, DEVICE, PCI_CFG");
        assertEquals(VirtioPciDevice.NOTIFY_OFF_MULTIPLIER, multiplier);
        assertEquals(1, common(CommonConfig.NUM_QUEUES, 2));
        assertEquals(2048, read(BAR, VirtioPciDevice.DEVICE_OFFSET, 8), "capacity in the device configuration");
        assertEquals(3, client.irqInfo(Interrupts.MSIX).count() + 1, "MSI-X: config vector plus one per queue");
    }

    @Test
    void shouldOfferVersion1AndOnlyTheBitsThisTransportCarries() throws Exception {
        long offered = offered();
        assertTrue((offered & VirtioFeature.VERSION_1.mask()) != 0);
        assertEquals(0, offered & (1L << 30), "vhost-user's F_PROTOCOL_FEATURES is not a virtio-pci feature");
        assertEquals(VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER | VirtioStatus.FEATURES_OK, negotiate(FEATURES));
        assertEquals(FEATURES, blk.negotiated);
    }

    @Test
    void shouldRefuseFeaturesOkWithoutVersion1() throws Exception {
        int status = negotiate(1L << VirtioBlk.F_FLUSH);
        assertEquals(0, status & VirtioStatus.FEATURES_OK, "a legacy-only driver does not reach FEATURES_OK");
    }

    @Test
    void shouldRefuseFeaturesOkWithABitTheDeviceDidNotOffer() throws Exception {
        int status = negotiate(FEATURES | VirtioFeature.IN_ORDER.mask());
        assertEquals(0, status & VirtioStatus.FEATURES_OK);
        common(CommonConfig.DEVICE_STATUS, 1, status | VirtioStatus.DRIVER_OK);
        assertEquals(0, status() & VirtioStatus.DRIVER_OK, "no DRIVER_OK without FEATURES_OK");
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void shouldServeBlockRequestsThroughADriverSideQueueAndSignalMsix(boolean packed) throws Exception {
        enableMsix();
        long features = packed ? FEATURES | VirtioFeature.RING_PACKED.mask() : FEATURES;
        assertEquals(VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER | VirtioStatus.FEATURES_OK, negotiate(features));
        common(CommonConfig.CONFIG_MSIX_VECTOR, 2, 0);
        assertEquals(0, common(CommonConfig.CONFIG_MSIX_VECTOR, 2));
        GpaAllocator allocator = new GpaAllocator(RAM, RAM + RAM_BYTES);
        DriverQueue queue = setUpQueue(allocator, 16, 1, packed);
        assertEquals(1, common(CommonConfig.QUEUE_MSIX_VECTOR, 2));
        assertEquals(1, common(CommonConfig.QUEUE_ENABLE, 2));
        assertEquals(0, common(CommonConfig.QUEUE_NOTIFY_OFF, 2));
        common(CommonConfig.DEVICE_STATUS, 1, status() | VirtioStatus.DRIVER_OK);
        assertEquals(1, blk.started.get());
        BlkRequestDriver driver = blkDriver(queue, allocator, vectors.get(1));
        long seed = new SplittableRandom().nextLong();
        byte[] data = new byte[8192];
        new SplittableRandom(seed).nextBytes(data);
        assertEquals(VirtioBlk.S_OK, driver.write(40, data), "seed=" + seed);
        assertArrayEquals(data, Arrays.copyOfRange(blk.disk, 40 * 512, 40 * 512 + 8192), "the device wrote the disk, seed=" + seed);
        byte[] back = new byte[8192];
        assertEquals(VirtioBlk.S_OK, driver.read(40, back));
        assertArrayEquals(data, back, "read back through the queue, seed=" + seed);
        assertEquals(VirtioBlk.S_UNSUPP, driver.flush(), "the test device answers FLUSH with UNSUPP");
        assertTrue(device.notifications() >= 3, "doorbells arrived through REGION_WRITE");
        assertEquals(0, vectors.get(0).drain(), "no configuration interrupt");
    }

    @Test
    void shouldHoldAMaskedVectorPendingAndDeliverItOnUnmask() throws Exception {
        enableMsix();
        negotiate(FEATURES);
        GpaAllocator allocator = new GpaAllocator(RAM, RAM + RAM_BYTES);
        SplitDriverQueue queue = setUpQueue(allocator, 16, 1);
        common(CommonConfig.DEVICE_STATUS, 1, status() | VirtioStatus.DRIVER_OK);
        write(VirtioPciDevice.MSIX_BAR, 16 + 12, 4, 1); // mask vector 1 in the table
        BlkRequestDriver driver = blkDriver(queue, allocator, vectors.get(1));
        vectors.get(1).drain(); // the queue's first run may notify before the mask
        driver.submit(0, VirtioBlk.T_OUT, 0, 512, false);
        driver.kick();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (!device.pci().msixPending(1) && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        assertTrue(device.pci().msixPending(1), "the masked vector is pending");
        long pba = read(VirtioPciDevice.MSIX_BAR, 0x800, 8);
        assertEquals(2, pba & 2, "pending bit 1 in the PBA");
        assertEquals(0, vectors.get(1).drain(), "nothing signalled while masked");
        write(VirtioPciDevice.MSIX_BAR, 16 + 12, 4, 0); // unmask
        awaitSignal(vectors.get(1), 5000);
        assertFalse(device.pci().msixPending(1));
        assertEquals(0, driver.awaitCompletion());
    }

    @Test
    void shouldFallBackToIntxWithTheIsrWhenMsixIsOff() throws Exception {
        EventFd intx = EventFd.create();
        vectors.add(intx);
        client.setIrqEventFds(Interrupts.INTX, 0, List.of(intx));
        negotiate(FEATURES);
        GpaAllocator allocator = new GpaAllocator(RAM, RAM + RAM_BYTES);
        SplitDriverQueue queue = setUpQueue(allocator, 16, CommonConfig.NO_VECTOR);
        common(CommonConfig.DEVICE_STATUS, 1, status() | VirtioStatus.DRIVER_OK);
        BlkRequestDriver driver = blkDriver(queue, allocator, intx);
        assertEquals(VirtioBlk.S_OK, driver.write(1, new byte[512]));
        assertEquals(VirtioPciDevice.ISR_QUEUE, read(BAR, VirtioPciDevice.ISR_OFFSET, 1), "the ISR says: a queue");
        assertEquals(0, read(BAR, VirtioPciDevice.ISR_OFFSET, 1), "reading the ISR cleared it");
    }

    @Test
    void shouldResetEverythingWhenStatusZeroIsWrittenAndKeepThePciFunction() throws Exception {
        enableMsix();
        negotiate(FEATURES);
        GpaAllocator allocator = new GpaAllocator(RAM, RAM + RAM_BYTES);
        SplitDriverQueue queue = setUpQueue(allocator, 16, 1);
        common(CommonConfig.DEVICE_STATUS, 1, status() | VirtioStatus.DRIVER_OK);
        BlkRequestDriver driver = blkDriver(queue, allocator, vectors.get(1));
        assertEquals(VirtioBlk.S_OK, driver.write(2, new byte[1024]));
        int resetsBefore = blk.resets.get();
        common(CommonConfig.DEVICE_STATUS, 1, 0);
        assertEquals(0, status(), "device_status reads 0 once the reset is done");
        assertEquals(1, blk.stopped.get(), "the queue stopped before the write returned");
        assertEquals(resetsBefore + 1, blk.resets.get());
        assertEquals(0, common(CommonConfig.QUEUE_ENABLE, 2));
        assertEquals(64, common(CommonConfig.QUEUE_SIZE, 2), "queue_size back at its maximum");
        assertEquals(0, common(CommonConfig.QUEUE_DESC, 8));
        assertEquals(CommonConfig.NO_VECTOR, common(CommonConfig.QUEUE_MSIX_VECTOR, 2));
        assertEquals(CommonConfig.NO_VECTOR, common(CommonConfig.CONFIG_MSIX_VECTOR, 2));
        assertTrue(device.pci().msixEnabled(), "a virtio reset is not a PCI function reset");
        int requests = blk.requests.get();
        write(BAR, VirtioPciDevice.NOTIFY_OFFSET, 2, 0);
        Thread.sleep(50);
        assertEquals(requests, blk.requests.get(), "a doorbell after the reset runs nothing");
    }

    @Test
    void shouldIgnoreHostileQueueSizesSelectsAddressesAndReadOnlyWrites() throws Exception {
        negotiate(FEATURES);
        common(CommonConfig.QUEUE_SELECT, 2, 0);
        common(CommonConfig.QUEUE_SIZE, 2, 48);
        assertEquals(64, common(CommonConfig.QUEUE_SIZE, 2), "a size that is not a power of two is refused");
        common(CommonConfig.QUEUE_SIZE, 2, 128);
        assertEquals(64, common(CommonConfig.QUEUE_SIZE, 2), "a size above the maximum is refused");
        common(CommonConfig.QUEUE_SIZE, 2, 0);
        assertEquals(64, common(CommonConfig.QUEUE_SIZE, 2), "size 0 is refused");
        common(CommonConfig.QUEUE_SIZE, 2, 16);
        assertEquals(16, common(CommonConfig.QUEUE_SIZE, 2));

        common(CommonConfig.QUEUE_SELECT, 2, 7);
        assertEquals(0, common(CommonConfig.QUEUE_SIZE, 2), "a queue that does not exist has size 0");
        common(CommonConfig.QUEUE_SIZE, 2, 16);
        common(CommonConfig.QUEUE_ENABLE, 2, 1);
        assertEquals(0, common(CommonConfig.QUEUE_ENABLE, 2));
        common(CommonConfig.QUEUE_SELECT, 2, 0xFFFF);
        assertEquals(0, common(CommonConfig.QUEUE_SIZE, 2));

        common(CommonConfig.QUEUE_SELECT, 2, 0);
        common(CommonConfig.QUEUE_DESC, 8, RAM + RAM_BYTES - 16); // the table runs past the DMA window
        common(CommonConfig.QUEUE_DRIVER, 8, RAM);
        common(CommonConfig.QUEUE_DEVICE, 8, RAM + 0x1000);
        common(CommonConfig.QUEUE_ENABLE, 2, 1);
        assertEquals(0, common(CommonConfig.QUEUE_ENABLE, 2), "rings outside the DMA space are not enabled");
        common(CommonConfig.QUEUE_DESC, 8, 0xFFFF_FFFF_FFFF_FFF0L);
        common(CommonConfig.QUEUE_ENABLE, 2, 1);
        assertEquals(0, common(CommonConfig.QUEUE_ENABLE, 2), "an address that wraps is not enabled");
        common(CommonConfig.QUEUE_DESC, 8, RAM + 8);
        common(CommonConfig.QUEUE_ENABLE, 2, 1);
        assertEquals(0, common(CommonConfig.QUEUE_ENABLE, 2), "a misaligned descriptor table is not enabled");

        common(CommonConfig.NUM_QUEUES, 2, 9);
        assertEquals(1, common(CommonConfig.NUM_QUEUES, 2), "num_queues is read-only");
        common(CommonConfig.DEVICE_FEATURE_SELECT, 4, 0);
        long features = common(CommonConfig.DEVICE_FEATURE, 4);
        common(CommonConfig.DEVICE_FEATURE, 4, 0);
        assertEquals(features, common(CommonConfig.DEVICE_FEATURE, 4), "device_feature is read-only");
        common(CommonConfig.DRIVER_FEATURE_SELECT, 4, 0);
        common(CommonConfig.DRIVER_FEATURE, 4, 0);
        assertEquals(FEATURES & 0xFFFF_FFFFL, common(CommonConfig.DRIVER_FEATURE, 4), "driver_feature is frozen after FEATURES_OK");
        common(CommonConfig.QUEUE_MSIX_VECTOR, 2, 5);
        assertEquals(CommonConfig.NO_VECTOR, common(CommonConfig.QUEUE_MSIX_VECTOR, 2), "a vector beyond the table reads NO_VECTOR");
        common(CommonConfig.DEVICE_STATUS, 1, status() | VirtioStatus.DRIVER_OK);
        assertEquals(0, blk.started.get(), "no queue was enabled, none started");
        write(BAR, VirtioPciDevice.NOTIFY_OFFSET + 0x400, 2, 0); // a doorbell of a queue that does not exist
        write(BAR, VirtioPciDevice.COMMON_OFFSET + 0x2000 - 2, 4, -1); // across two structures
        assertEquals(0, blk.requests.get());
    }

    @Test
    void shouldReachTheStructuresThroughThePciCfgCapability() throws Exception {
        int cap = device.pciCfgCapabilityOffset();
        write(PciDevice.CONFIG_REGION, cap + VirtioPciCapability.BAR_OFFSET, 1, BAR);
        write(PciDevice.CONFIG_REGION, cap + VirtioPciCapability.OFFSET_OFFSET, 4, VirtioPciDevice.COMMON_OFFSET + CommonConfig.DEVICE_STATUS);
        write(PciDevice.CONFIG_REGION, cap + VirtioPciCapability.LENGTH_OFFSET, 4, 1);
        write(PciDevice.CONFIG_REGION, cap + VirtioPciCapability.EXTRA_OFFSET, 4, VirtioStatus.ACKNOWLEDGE);
        assertEquals(VirtioStatus.ACKNOWLEDGE, status(), "a write through pci_cfg_data reached device_status");
        write(PciDevice.CONFIG_REGION, cap + VirtioPciCapability.OFFSET_OFFSET, 4, VirtioPciDevice.COMMON_OFFSET + CommonConfig.NUM_QUEUES);
        write(PciDevice.CONFIG_REGION, cap + VirtioPciCapability.LENGTH_OFFSET, 4, 2);
        assertEquals(1, read(PciDevice.CONFIG_REGION, cap + VirtioPciCapability.EXTRA_OFFSET, 2), "num_queues read through pci_cfg_data");
    }

    @Test
    void shouldStopQueuesAndResetWhenTheClientGoes() throws Exception {
        enableMsix();
        negotiate(FEATURES);
        GpaAllocator allocator = new GpaAllocator(RAM, RAM + RAM_BYTES);
        setUpQueue(allocator, 16, 1);
        common(CommonConfig.DEVICE_STATUS, 1, status() | VirtioStatus.DRIVER_OK);
        assertEquals(1, blk.started.get());
        client.close();
        client = null;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while ((blk.stopped.get() == 0 || device.status() != 0 || device.pci().msixEnabled()) && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertEquals(1, blk.stopped.get(), "the queue stopped");
        assertEquals(0, device.status(), "the next client finds a reset device");
        assertFalse(device.pci().msixEnabled(), "and a reset PCI function");
    }

    @Test
    void shouldSetDeviceNeedsResetAndRaiseTheConfigVectorWhenTheDriverBreaksItsRing() throws Exception {
        enableMsix();
        negotiate(FEATURES);
        common(CommonConfig.CONFIG_MSIX_VECTOR, 2, 0);
        GpaAllocator allocator = new GpaAllocator(RAM, RAM + RAM_BYTES);
        SplitDriverQueue queue = setUpQueue(allocator, 16, 1);
        common(CommonConfig.DEVICE_STATUS, 1, status() | VirtioStatus.DRIVER_OK);
        vectors.get(0).drain();
        int generation = (int) common(CommonConfig.CONFIG_GENERATION, 1);
        // avail.idx 1000 ahead of a ring of 16: a driver bug or an attack (VIRTIO 1.2 §2.7.13.3)
        memory.slice(queue.config().driverAddr() + 2, 2).set(ValueLayout.JAVA_SHORT_UNALIGNED, 0, (short) 1000);
        write(BAR, VirtioPciDevice.NOTIFY_OFFSET, 2, 0);
        awaitSignal(vectors.get(0), 5000);
        assertEquals(VirtioStatus.DEVICE_NEEDS_RESET, status() & VirtioStatus.DEVICE_NEEDS_RESET);
        assertTrue(common(CommonConfig.CONFIG_GENERATION, 1) != generation, "config_generation moved");
        common(CommonConfig.DEVICE_STATUS, 1, 0);
        assertEquals(0, status(), "a reset clears DEVICE_NEEDS_RESET");
    }

    @Test
    void shouldBreakTheQueueNotTheProcessWhenTheClientUnmapsMemoryUnderARunningQueue() throws Exception {
        enableMsix();
        negotiate(FEATURES);
        common(CommonConfig.CONFIG_MSIX_VECTOR, 2, 0);
        GpaAllocator allocator = new GpaAllocator(RAM, RAM + RAM_BYTES);
        SplitDriverQueue queue = setUpQueue(allocator, 16, 1);
        common(CommonConfig.DEVICE_STATUS, 1, status() | VirtioStatus.DRIVER_OK);
        BlkRequestDriver driver = blkDriver(queue, allocator, vectors.get(1));
        assertEquals(VirtioBlk.S_OK, driver.write(3, new byte[512]));
        client.dmaUnmap(RAM, RAM_BYTES);
        driver.data(0).asSlice(0, 512).fill((byte) 0x5A); // still mapped on the client's side
        driver.submit(0, VirtioBlk.T_OUT, 4, 512, false);
        driver.kick();
        awaitSignal(vectors.get(0), 5000);
        assertEquals(VirtioStatus.DEVICE_NEEDS_RESET, status() & VirtioStatus.DEVICE_NEEDS_RESET, "the ring left the DMA space");
        assertEquals(0, blk.disk[4 * 512 + 1], "nothing was written from unmapped memory");
        common(CommonConfig.DEVICE_STATUS, 1, 0);
        assertEquals(0, status(), "and the device still answers");
    }

    static long[] seeds() {
        long base = new SplittableRandom().nextLong();
        return new long[] {base, base + 1, base + 2};
    }

    /** Random register writes anywhere in BAR4 and the virtio capabilities: the device keeps answering. */
    @ParameterizedTest(name = "seed={0}")
    @MethodSource("seeds")
    void shouldSurviveRandomRegisterWrites(long seed) throws Exception {
        SplittableRandom random = new SplittableRandom(seed);
        int[] widths = {1, 2, 4, 8};
        for (int i = 0; i < 2000; i++) {
            int width = widths[random.nextInt(widths.length)];
            long value = random.nextLong();
            if (random.nextInt(8) == 0) {
                int at = 0x40 + random.nextInt(0xC0 - width);
                write(PciDevice.CONFIG_REGION, at, Math.min(width, 4), value);
            } else {
                long area = random.nextInt(4) * 0x1000L;
                long at = area + (random.nextInt(4) == 0 ? random.nextInt(0x1000 - width) : random.nextInt(0x40));
                write(BAR, at, width, random.nextInt(3) == 0 ? value & 0xFF : value);
            }
        }
        common(CommonConfig.DEVICE_STATUS, 1, 0);
        assertEquals(0, status(), "seed=" + seed);
        assertEquals(1, common(CommonConfig.NUM_QUEUES, 2), "seed=" + seed);
        assertEquals(0x1042, read(PciDevice.CONFIG_REGION, 0x02, 2), "seed=" + seed);
    }
}
