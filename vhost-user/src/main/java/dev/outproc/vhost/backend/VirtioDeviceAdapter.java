package dev.outproc.vhost.backend;

import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.core.virtio.VirtioQueue;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;

/** A plain {@link VirtioDevice} served over vhost-user: every call forwarded, the vhost-only ones defaulted. */
record VirtioDeviceAdapter(VirtioDevice device) implements VhostUserDevice {
    @Override
    public int deviceType() {
        return device.deviceType();
    }

    @Override
    public long features() {
        return device.features();
    }

    @Override
    public int queueCount() {
        return device.queueCount();
    }

    @Override
    public int workerGroup(int queueIndex) {
        return device.workerGroup(queueIndex);
    }

    @Override
    public int maxQueueSize() {
        return device.maxQueueSize();
    }

    @Override
    public int configSize() {
        return device.configSize();
    }

    @Override
    public void readConfig(int offset, MemorySegment destination) {
        device.readConfig(offset, destination);
    }

    @Override
    public void writeConfig(int offset, MemorySegment source) throws IOException {
        device.writeConfig(offset, source);
    }

    @Override
    public void processQueue(VirtioQueue queue) throws IOException {
        device.processQueue(queue);
    }

    @Override
    public void queueStarted(VirtioQueue queue) {
        device.queueStarted(queue);
    }

    @Override
    public void queueStopped(VirtioQueue queue) {
        device.queueStopped(queue);
    }

    @Override
    public void queueEnabled(VirtioQueue queue, boolean enabled) {
        device.queueEnabled(queue, enabled);
    }

    @Override
    public void featuresNegotiated(long features) {
        device.featuresNegotiated(features);
    }

    @Override
    public void statusChanged(int status) {
        device.statusChanged(status);
    }

    @Override
    public void reset() {
        device.reset();
    }

    @Override
    public boolean migratable() {
        return device.migratable();
    }

    @Override
    public void saveState(WritableByteChannel out) throws IOException {
        device.saveState(out);
    }

    @Override
    public void loadState(ReadableByteChannel in) throws IOException {
        device.loadState(in);
    }
}
