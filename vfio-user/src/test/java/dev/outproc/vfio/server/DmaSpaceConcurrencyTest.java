package dev.outproc.vfio.server;

import dev.outproc.core.fd.Errno;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.MemFd;
import dev.outproc.vfio.message.DmaMap;
import dev.outproc.vfio.message.VfioUserProtocolException;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Device threads doing DMA while the client maps and unmaps (libvfio-user issue #594's scenario): every
 * access either completes inside a live window or fails with EFAULT; none touches an unmapped mapping
 * (which would surface as an IllegalStateException from the closed arena, or worse).
 */
class DmaSpaceConcurrencyTest {
    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {1, 42, 20261129})
    void shouldNeverAccessAWindowAfterItsUnmapReturned(long seed) throws Exception {
        System.out.println("DmaSpaceConcurrencyTest seed=" + seed);
        DmaSpace dma = new DmaSpace(16, 1L << 30, new DmaSpace.MessageDma() {
            @Override
            public void dmaRead(long address, MemorySegment destination) throws VfioUserProtocolException {
                throw new VfioUserProtocolException(Errno.EIO, "no messages in this test");
            }

            @Override
            public void dmaWrite(long address, MemorySegment source) throws VfioUserProtocolException {
                throw new VfioUserProtocolException(Errno.EIO, "no messages in this test");
            }
        });
        List<Throwable> unexpected = new CopyOnWriteArrayList<>();
        AtomicBoolean stop = new AtomicBoolean();
        AtomicLong completed = new AtomicLong();
        AtomicLong refused = new AtomicLong();
        Thread[] devices = new Thread[3];
        for (int t = 0; t < devices.length; t++) {
            long threadSeed = seed * 31 + t;
            devices[t] = Thread.ofPlatform().start(() -> {
                Random r = new Random(threadSeed);
                try (Arena a = Arena.ofConfined()) {
                    MemorySegment buffer = a.allocate(512);
                    while (!stop.get()) {
                        long address = 0x10_0000 + r.nextInt(0x4000 - 512);
                        try {
                            if (r.nextBoolean()) {
                                dma.write(address, buffer);
                            } else {
                                dma.read(address, buffer);
                            }
                            completed.incrementAndGet();
                        } catch (VfioUserProtocolException e) {
                            if (e.errno() != Errno.EFAULT) {
                                unexpected.add(e);
                            }
                            refused.incrementAndGet();
                        } catch (Throwable e) {
                            unexpected.add(e);
                        }
                    }
                }
            });
        }
        Random r = new Random(seed);
        try (OwnedFd fd = MemFd.create("dma-race", 0x4000)) {
            for (int i = 0; i < 300; i++) {
                dma.map(0x10_0000, 0x4000, DmaMap.FLAG_READ | DmaMap.FLAG_WRITE, fd, 0);
                Thread.onSpinWait();
                if (r.nextInt(4) == 0) {
                    Thread.sleep(0, 200_000);
                }
                if (r.nextBoolean()) {
                    dma.unmap(0x10_0000, 0x4000);
                } else {
                    dma.unmapAll();
                }
                assertTrue(dma.guestMemory().regionCount() == 0, "unmap published an empty snapshot");
            }
        } finally {
            stop.set(true);
            for (Thread t : devices) {
                t.join();
            }
        }
        assertEquals(List.of(), unexpected, "seed=" + seed);
        assertTrue(completed.get() > 0 && refused.get() > 0, "both outcomes happened: completed=" + completed + " refused=" + refused);
    }
}
