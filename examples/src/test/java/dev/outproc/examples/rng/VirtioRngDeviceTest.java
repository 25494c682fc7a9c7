package dev.outproc.examples.rng;

import dev.outproc.core.virtio.VirtioDeviceType;
import dev.outproc.vhost.testkit.DeviceTestBench;
import dev.outproc.vhost.testkit.TestQueue;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** The guide's second worked example, tested with the test kit as a device author would. */
class VirtioRngDeviceTest {
    // @start region="test"
    @Test
    void shouldFillEveryWritableBuffer() throws Exception {
        try (DeviceTestBench bench = DeviceTestBench.start(new VirtioRngDevice())) {
            TestQueue requests = bench.startQueue(0);
            requests.post(new byte[0], 64);                        // one device-writable buffer
            requests.post(new byte[0], 64);
            requests.kick();
            TestQueue.Used first = requests.await();
            TestQueue.Used second = requests.await();
            assertEquals(64, first.writtenBytes());
            assertEquals(64, second.writtenBytes());
            assertFalse(Arrays.equals(first.written(), second.written()), "two requests, two different fills");
        }
    }
    // @end

    @Test
    void shouldCapOneRequestAndKeepServing() throws Exception {
        try (DeviceTestBench bench = DeviceTestBench.start(new VirtioRngDevice())) {
            TestQueue requests = bench.startQueue(0, 8, 2 * VirtioRngDevice.MAX_BYTES_PER_REQUEST);
            requests.post(new byte[0], 2 * VirtioRngDevice.MAX_BYTES_PER_REQUEST);
            assertEquals(VirtioRngDevice.MAX_BYTES_PER_REQUEST, requests.kickAndAwait().writtenBytes(), "capped");
            requests.post(new byte[0], 1);
            assertEquals(1, requests.kickAndAwait().writtenBytes(), "the queue goes on after a capped request");
        }
    }

    @Test
    void shouldAnswerAChainWithoutWritableBuffersWithNothing() throws Exception {
        try (DeviceTestBench bench = DeviceTestBench.start(new VirtioRngDevice())) {
            TestQueue requests = bench.startQueue(0);
            requests.post(new byte[16], 0);                        // a driver error: nowhere to write
            assertEquals(0, requests.kickAndAwait().writtenBytes());
            requests.post(new byte[0], 32);
            TestQueue.Used used = requests.kickAndAwait();
            assertEquals(32, used.writtenBytes());
            assertFalse(Arrays.equals(new byte[32], used.written()), "filled, not left zero");
        }
    }

    @Test
    void shouldBeAnEntropyDeviceWithOneQueue() {
        VirtioRngDevice device = new VirtioRngDevice();
        assertEquals(VirtioDeviceType.ENTROPY, device.deviceType());
        assertEquals(1, device.queueCount());
    }
}
