package dev.outproc.examples.net;

import dev.outproc.vhost.frontend.VhostUserFrontend;
import dev.outproc.vhost.testkit.DeviceTestBench;
import dev.outproc.vhost.testkit.TestQueue;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A virtio-net driver for tests, on the test kit's guest side: the receive ring (queue 0) and the transmit
 * ring (queue 1) of a {@link DeviceTestBench} connected to a running back-end, with the chain shapes a
 * network driver posts.
 */
final class NetTestDriver implements AutoCloseable {
    static final int QUEUE_SIZE = 256;
    /** Per-chain buffer area: large enough for the longest hostile transmit chain. */
    static final int SLOT_BYTES = 72 * 1024;
    private static final byte[] NOTHING = new byte[0];

    private final DeviceTestBench bench;
    final VhostUserFrontend frontend;
    final long acked;
    private final TestQueue rx;
    private final TestQueue tx;

    private NetTestDriver(DeviceTestBench bench, TestQueue rx, TestQueue tx) {
        this.bench = bench;
        this.frontend = bench.frontend();
        this.acked = bench.features();
        this.rx = rx;
        this.tx = tx;
    }

    static NetTestDriver start(Path socket, long wantedFeatures) throws IOException {
        DeviceTestBench bench = DeviceTestBench.connect(socket, wantedFeatures);
        try {
            TestQueue rx = bench.startQueue(0, QUEUE_SIZE, SLOT_BYTES);
            TestQueue tx = bench.startQueue(1, QUEUE_SIZE, SLOT_BYTES);
            return new NetTestDriver(bench, rx, tx);
        } catch (IOException | RuntimeException e) {
            bench.close();
            throw e;
        }
    }

    /** Posts {@code count} receive chains of one writable buffer of {@code bytes} each. */
    void postRx(int count, int bytes) throws IOException {
        for (int i = 0; i < count; i++) {
            rx.post(NOTHING, bytes);
        }
        rx.kick();
    }

    /** Posts a receive chain whose only buffer is device-readable (a malformed receive chain). */
    void postReadOnlyRx() throws IOException {
        rx.post(new byte[2048], 0);
        rx.kick();
    }

    /**
     * Sends {@code packet} (header and frame) on the transmit ring, split into {@code parts} buffers,
     * plus {@code writableBytes} of device-writable buffer when non-zero, and waits for it to be used.
     *
     * @return the used length the device reported
     */
    long send(byte[] packet, int parts, int writableBytes) throws IOException {
        tx.post(packet, parts, writableBytes);
        return tx.kickAndAwait().writtenBytes();
    }

    /** {@return the next used receive chain, or null when none comes within {@code timeoutMillis}} */
    TestQueue.Used pollRx(long timeoutMillis) throws IOException {
        return rx.poll(timeoutMillis);
    }

    @Override
    public void close() {
        bench.close();
    }
}
