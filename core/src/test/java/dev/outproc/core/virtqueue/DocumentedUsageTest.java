package dev.outproc.core.virtqueue;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.virtio.VirtioFeature;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** Runs the usage examples of the {@link DeviceQueue} and {@link DriverQueue} Javadoc, line for line. */
class DocumentedUsageTest {
    private DeviceQueue queue;
    private EventFd callFd;

    /** The example's device handler: echoes the request, upper-cased, into the reply buffer. */
    private long handle(DescriptorChain chain) throws VirtqueueException {
        byte[] request = new byte[(int) chain.totalReadable()];
        chain.readReadable(0, MemorySegment.ofArray(request), 0, request.length);
        byte[] reply = new String(request, java.nio.charset.StandardCharsets.US_ASCII).toUpperCase()
                .getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        chain.writeWritable(0, MemorySegment.ofArray(reply), 0, reply.length);
        return reply.length;
    }

    private void serviceRoutine() throws Exception {
        // Identical to the DeviceQueue class Javadoc.
        queue.disableNotifications();
        while (true) {
            DescriptorChain chain;
            while ((chain = queue.pop()) != null) {
                long written = handle(chain);            // read readable buffers, fill writable ones
                queue.addUsed(chain, written);           // publishes; see addUsedBatch / stageUsed for batching
            }
            if (queue.needsNotification()) {
                callFd.signal();
            }
            if (!queue.enableNotifications()) {
                break;                                   // nothing arrived meanwhile: wait for the next kick
            }
            queue.disableNotifications();
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void shouldRunTheDocumentedExamples(boolean packed) throws Exception {
        try (GuestRam ram = new GuestRam(1 << 20); EventFd kickFd = EventFd.create(); EventFd call = EventFd.create()) {
            Rig rig = Rig.create(ram, packed, 16, VirtioFeature.EVENT_IDX.mask(), 0);
            queue = rig.device();
            callFd = call;
            DriverQueue driver = rig.driver();
            long requestGpa = ram.allocator.allocate(64, 8);
            long replyGpa = ram.allocator.allocate(64, 8);
            int requestLength = 5;
            int replyLength = 64;
            ram.at(requestGpa, 5).copyFrom(MemorySegment.ofArray("hello".getBytes(java.nio.charset.StandardCharsets.US_ASCII)));
            assertFalse(queue.enableNotifications(), "nothing posted yet");

            // Identical to the DriverQueue interface Javadoc (the reaped values are collected for the asserts).
            driver.add(requestGpa, requestLength, false);   // device-readable
            driver.add(replyGpa, replyLength, true);        // device-writable
            int id = driver.post(false);                    // -1: no room, reap first (the buffers stay staged)
            driver.publish();
            if (driver.kickNeeded()) {
                kickFd.signal();
            }
            assertEquals(1, kickFd.drain(), "the device asked for a kick");
            serviceRoutine();
            assertEquals(1, call.drain(), "the driver gets one used-buffer notification");
            List<long[]> reaped = new ArrayList<>();
            long used;
            while ((used = driver.pollUsed()) != DriverQueue.NONE) {
                int doneId = DriverQueue.usedId(used);
                long written = DriverQueue.usedLength(used);
                reaped.add(new long[] {doneId, written});
            }
            assertEquals(1, reaped.size());
            assertEquals(id, reaped.get(0)[0]);
            assertEquals(5, reaped.get(0)[1]);
            assertEquals("HELLO", new String(ram.at(replyGpa, 5).toArray(ValueLayout.JAVA_BYTE),
                    java.nio.charset.StandardCharsets.US_ASCII));
        }
    }
}
