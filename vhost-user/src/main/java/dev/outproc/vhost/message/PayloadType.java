package dev.outproc.vhost.message;

/**
 * The payload kinds of vhost-user.rst ("Payload") with the sizes a message of that kind may have.
 * Fixed kinds have {@code minBytes == maxBytes}; variable kinds are checked further by
 * {@link MessageValidator} (for example a memory table is exactly {@code 8 + 32 * nregions} bytes).
 */
public enum PayloadType {
    /** No payload: size 0. */
    NONE(0, 0),
    /** "A single 64-bit integer" ({@link U64Payload}). */
    U64(U64Payload.ENCODED_LENGTH, U64Payload.ENCODED_LENGTH),
    /** "A vring state description" and the vring descriptor index/indices ({@link VringState}). */
    VRING_STATE(VringState.ENCODED_LENGTH, VringState.ENCODED_LENGTH),
    /** "A vring address description" ({@link VringAddr}). */
    VRING_ADDR(VringAddr.ENCODED_LENGTH, VringAddr.ENCODED_LENGTH),
    /** "Multiple memory regions description": 8 bytes plus 0 to 8 regions ({@link MemTable}). */
    MEM_TABLE(MemTable.REGIONS_OFFSET, MemTable.REGIONS_OFFSET + MemTable.MAX_REGIONS * MemoryRegion.ENCODED_LENGTH),
    /** "Single memory region description" ({@link SingleMemRegion}). */
    SINGLE_MEM_REGION(SingleMemRegion.ENCODED_LENGTH, SingleMemRegion.ENCODED_LENGTH),
    /** "Log description" ({@link LogDescription}). */
    LOG(LogDescription.ENCODED_LENGTH, LogDescription.ENCODED_LENGTH),
    /** "An IOTLB message" ({@link IotlbMsg}). */
    IOTLB(IotlbMsg.ENCODED_LENGTH, IotlbMsg.ENCODED_LENGTH),
    /** "Virtio device config space": 12 bytes plus up to 256 bytes of config ({@link ConfigSpace}). */
    CONFIG(ConfigSpace.PAYLOAD_OFFSET, ConfigSpace.PAYLOAD_OFFSET + ConfigSpace.MAX_CONFIG_BYTES),
    /** "Crypto session description": not laid out by the specification ({@link CryptoSession}). */
    CRYPTO_SESSION(CryptoSession.MIN_BYTES, CryptoSession.MAX_BYTES),
    /** "Vring area description" ({@link VringArea}). */
    VRING_AREA(VringArea.ENCODED_LENGTH, VringArea.ENCODED_LENGTH),
    /** "Inflight description" ({@link InflightDescription}). */
    INFLIGHT(InflightDescription.ENCODED_LENGTH, InflightDescription.ENCODED_LENGTH),
    /** "VhostUserShared": a 16-byte UUID ({@link SharedObject}). */
    SHARED_OBJECT(SharedObject.ENCODED_LENGTH, SharedObject.ENCODED_LENGTH),
    /** "Device state transfer parameters" ({@link DeviceStateTransfer}). */
    DEVICE_STATE_TRANSFER(DeviceStateTransfer.ENCODED_LENGTH, DeviceStateTransfer.ENCODED_LENGTH),
    /** "MMAP request" ({@link ShmemMap}). */
    SHMEM_MAP(ShmemMap.ENCODED_LENGTH, ShmemMap.ENCODED_LENGTH),
    /** "VIRTIO Shared Memory Region configuration" ({@link ShmemConfig}). */
    SHMEM_CONFIG(ShmemConfig.ENCODED_LENGTH, ShmemConfig.ENCODED_LENGTH);

    private final int minBytes;
    private final int maxBytes;

    PayloadType(int minBytes, int maxBytes) {
        this.minBytes = minBytes;
        this.maxBytes = maxBytes;
    }

    /** {@return the smallest size a payload of this kind may have} */
    public int minBytes() {
        return minBytes;
    }

    /** {@return the largest size a payload of this kind may have} */
    public int maxBytes() {
        return maxBytes;
    }

    /** {@return whether every payload of this kind has the same size} */
    public boolean isFixedSize() {
        return minBytes == maxBytes;
    }

    /**
     * {@return whether {@code size} lies within this kind's bounds} Variable kinds need the full check of
     * {@link MessageValidator}.
     *
     * @param size a payload size (unsigned)
     */
    public boolean sizeInBounds(long size) {
        return size >= minBytes && size <= maxBytes;
    }
}
