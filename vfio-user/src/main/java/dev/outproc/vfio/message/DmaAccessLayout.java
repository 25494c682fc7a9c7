package dev.outproc.vfio.message;

/**
 * The two layouts of {@code VFIO_USER_DMA_READ}/{@code DMA_WRITE} seen on the wire. The specification and
 * libvfio-user use {@code u64 address; u64 count;} with the data at payload offset 16. QEMU's client
 * (hw/vfio-user, 10.x) uses its unpacked {@code VFIOUserDMARW}: {@code u64 offset; u32 count;} with the data
 * at payload offset 12 and 4 bytes of tail padding, so a DMA_READ reply from QEMU is 16 + count payload
 * bytes with the data starting at 12, and its DMA_WRITE reply is the header alone. A server writes the
 * specification's layout (QEMU reads the low half of the 64-bit count, which is the whole count for any
 * transfer under 4 GiB). A DMA_READ reply is 16 + count payload bytes in both layouts, so the shapes
 * cannot tell them apart: a server is told which layout its client uses.
 */
public enum DmaAccessLayout {
    /** The specification's and libvfio-user's layout: data at payload offset 16. */
    SPEC(DmaAccess.ENCODED_LENGTH),
    /** QEMU's {@code VFIOUserDMARW}: data at payload offset 12. */
    QEMU(DmaAccess.QEMU_DATA_OFFSET);

    private final int dataOffset;

    DmaAccessLayout(int dataOffset) {
        this.dataOffset = dataOffset;
    }

    /** {@return where the data starts in the payload} */
    public int dataOffset() {
        return dataOffset;
    }
}
