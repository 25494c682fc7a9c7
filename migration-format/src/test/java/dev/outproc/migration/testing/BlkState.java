package dev.outproc.migration.testing;

import java.util.List;

/**
 * Device-visible state of a virtio-blk device as the format class {@code virtio-spec.org/pci/virtio-blk/state}
 * describes it (docs/integration.md section 5).
 *
 * @param capacity capacity in sectors
 * @param blkSize block size
 * @param numQueues number of queues
 * @param readOnly read-only
 * @param deviceFeatures offered features
 * @param driverFeatures negotiated features
 * @param deviceStatus device status byte
 * @param configGeneration config generation
 * @param writeback write cache mode (format version 2; default true)
 * @param queues ring positions
 * @param requests statistics (format version 2, skippable)
 * @param bytesRead statistics
 * @param bytesWritten statistics
 */
public record BlkState(long capacity, int blkSize, int numQueues, boolean readOnly, long deviceFeatures, long driverFeatures,
        int deviceStatus, int configGeneration, boolean writeback, List<Queue> queues, long requests, long bytesRead, long bytesWritten) {

    /**
     * One queue's ring position.
     *
     * @param index queue index
     * @param size queue size
     * @param enabled enabled
     * @param nextAvail next available index
     * @param nextUsed next used index
     */
    public record Queue(int index, int size, boolean enabled, int nextAvail, int nextUsed) {}

    /** @return a sample state of a running two-queue device */
    public static BlkState sample() {
        return new BlkState(2097152, 512, 2, false, 0x100001244L, 0x100001244L, 0x0f, 0, false,
                List.of(new Queue(0, 256, true, 1234, 1230), new Queue(1, 256, true, 77, 77)), 5000, 1 << 24, 1 << 20);
    }

    /** @return what survives a format-version-1 stream: writeback takes its default, statistics are lost */
    public BlkState asV1() {
        return new BlkState(capacity, blkSize, numQueues, readOnly, deviceFeatures, driverFeatures, deviceStatus, configGeneration,
                true, queues, 0, 0, 0);
    }
}
