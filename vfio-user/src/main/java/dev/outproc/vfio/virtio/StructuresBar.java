package dev.outproc.vfio.virtio;

import dev.outproc.core.fd.Errno;
import dev.outproc.core.fd.NativeException;
import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.vfio.message.VfioUserProtocolException;
import dev.outproc.vfio.pci.BarHandler;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicLong;

import static java.lang.System.Logger.Level.DEBUG;
import static java.lang.System.Logger.Level.TRACE;

/**
 * {@link VirtioPciDevice#STRUCTURES_BAR}: one 4 KiB window per virtio
 * structure, the common configuration, the ISR status, the device configuration and the notifications (VIRTIO 1.2
 * §4.1.4). An access across two windows touches nothing real: reads return zeros, writes are dropped.
 */
final class StructuresBar implements BarHandler {
    private static final System.Logger LOG = System.getLogger(VirtioPciDevice.class.getName());
    private static final int WINDOW = VirtioPciDevice.STRUCTURE_WINDOW;

    private final VirtioDevice device;
    private final PciQueue[] queues;
    private final TransportRegisters registers;
    private final CommonConfigAccess common;
    private final AtomicLong notifications = new AtomicLong();

    StructuresBar(VirtioDevice device, PciQueue[] queues, TransportRegisters registers, CommonConfigAccess common) {
        this.device = device;
        this.queues = queues;
        this.registers = registers;
        this.common = common;
    }

    /** {@return how many doorbell writes reached the notification area} */
    long notifications() {
        return notifications.get();
    }

    @Override
    public void read(long offset, MemorySegment destination) {
        long length = destination.byteSize();
        int area = (int) (offset / WINDOW);
        int at = (int) (offset % WINDOW);
        if (at + length > WINDOW) {
            destination.fill((byte) 0); // across two structures: nothing real lives there
            return;
        }
        switch (area) {
            case 0 -> common.read(at, destination);
            case 1 -> {
                destination.fill((byte) 0);
                if (at == 0) {
                    // Reading the ISR clears it (VIRTIO 1.2 §4.1.4.5).
                    destination.set(ValueLayout.JAVA_BYTE, 0, (byte) registers.isr.getAndSet(0));
                }
            }
            case 2 -> readDeviceConfig(at, destination);
            default -> destination.fill((byte) 0);
        }
    }

    @Override
    public void write(long offset, MemorySegment source) throws VfioUserProtocolException {
        long length = source.byteSize();
        int area = (int) (offset / WINDOW);
        int at = (int) (offset % WINDOW);
        if (at + length > WINDOW) {
            return;
        }
        switch (area) {
            case 0 -> common.write(at, source);
            case 2 -> writeDeviceConfig(at, source);
            case 3 -> doorbell(at);
            default -> {
                // the ISR is read-only
            }
        }
    }

    private void readDeviceConfig(int at, MemorySegment destination) {
        int size = device.configSize();
        destination.fill((byte) 0);
        long n = Math.min(destination.byteSize(), Math.max(0, size - at));
        if (n > 0) {
            device.readConfig(at, destination.asSlice(0, n));
        }
    }

    private void writeDeviceConfig(int at, MemorySegment source) {
        if (at + source.byteSize() > device.configSize()) {
            LOG.log(DEBUG, "device configuration write beyond its {0} bytes ignored, offset={1}", device.configSize(), at);
            return;
        }
        try {
            device.writeConfig(at, source);
        } catch (IOException e) {
            LOG.log(DEBUG, "device configuration write refused: " + e.getMessage());
        }
    }

    /** A doorbell: queue {@code at / 4} (VIRTIO 1.2 §4.1.4.4; the written value is the queue index). */
    private void doorbell(int at) throws VfioUserProtocolException {
        notifications.incrementAndGet();
        if (LOG.isLoggable(TRACE)) {
            LOG.log(TRACE, "doorbell at 0x" + Integer.toHexString(at));
        }
        int index = at / VirtioPciDevice.NOTIFY_OFF_MULTIPLIER;
        if (at % VirtioPciDevice.NOTIFY_OFF_MULTIPLIER != 0 || index >= queues.length) {
            return;
        }
        PciQueue q = queues[index];
        if (!q.started) {
            return; // served when the queue starts
        }
        try {
            q.kick.signal();
        } catch (NativeException e) {
            throw new VfioUserProtocolException(Errno.EIO, "queue " + index + ": kick eventfd failed: " + e.getMessage());
        }
    }
}
