package dev.outproc.core.virtio.blk;

/**
 * virtio-blk constants (VIRTIO 1.2 §5.2): feature bits, request types, status values and the layout
 * of the configuration space and of the request header. Both sides use them: a device
 * ({@code VirtioBlkDevice} in the examples) and the driver ({@link BlkRequestDriver}).
 *
 * <pre>
 * configuration space (little-endian, 60 bytes)
 *   0 capacity u64 (512-byte sectors)   8 size_max u32    12 seg_max u32
 *  16 cylinders u16  18 heads u8  19 sectors u8            20 blk_size u32
 *  24 physical_block_exp u8  25 alignment_offset u8  26 min_io_size u16  28 opt_io_size u32
 *  32 writeback u8  33 unused  34 num_queues u16
 *  36 max_discard_sectors u32  40 max_discard_seg u32  44 discard_sector_alignment u32
 *  48 max_write_zeroes_sectors u32  52 max_write_zeroes_seg u32  56 write_zeroes_may_unmap u8  57..59 unused
 *
 * request: header (readable) | data | status u8 (last writable byte)
 *   header: 0 type u32 | 4 reserved u32 | 8 sector u64
 *   discard / write-zeroes segment: 0 sector u64 | 8 num_sectors u32 | 12 flags u32 (bit 0 unmap)
 * </pre>
 */
public final class VirtioBlk {
    /** Maximum size of any single segment is in size_max. */
    public static final int F_SIZE_MAX = 1;
    /** Maximum number of segments in a request is in seg_max. */
    public static final int F_SEG_MAX = 2;
    /** Device is read-only. */
    public static final int F_RO = 5;
    /** Block size of disk is in blk_size. */
    public static final int F_BLK_SIZE = 6;
    /** Cache flush command support. */
    public static final int F_FLUSH = 9;
    /** Device exports information on optimal I/O alignment. */
    public static final int F_TOPOLOGY = 10;
    /** Device supports multiqueue. */
    public static final int F_MQ = 12;
    /** Device supports discard. */
    public static final int F_DISCARD = 13;
    /** Device supports write zeroes. */
    public static final int F_WRITE_ZEROES = 14;

    /** Read. */
    public static final int T_IN = 0;
    /** Write. */
    public static final int T_OUT = 1;
    /** Flush. */
    public static final int T_FLUSH = 4;
    /** Device id (20 bytes). */
    public static final int T_GET_ID = 8;
    /** Discard. */
    public static final int T_DISCARD = 11;
    /** Write zeroes. */
    public static final int T_WRITE_ZEROES = 13;

    /** Success. */
    public static final int S_OK = 0;
    /** Device or driver error. */
    public static final int S_IOERR = 1;
    /** Request unsupported. */
    public static final int S_UNSUPP = 2;

    /** Bytes of the configuration space up to {@code write_zeroes_may_unmap} and its padding. */
    public static final int CONFIG_SIZE = 60;
    /** Bytes of the request header. */
    public static final int HEADER_SIZE = 16;
    /** Bytes of a discard/write-zeroes segment. */
    public static final int SEGMENT_SIZE = 16;
    /** Bytes of the device id. */
    public static final int ID_BYTES = 20;
    /** virtio-blk sectors are 512 bytes whatever the block size. */
    public static final int SECTOR_SIZE = 512;
    /** Offset of {@code capacity} (u64, sectors) in the configuration space. */
    public static final int CONFIG_CAPACITY_OFFSET = 0;
    /** Offset of {@code type} (u32) in the request header. */
    public static final int HEADER_TYPE_OFFSET = 0;
    /** Offset of {@code reserved} (u32) in the request header. */
    public static final int HEADER_RESERVED_OFFSET = 4;
    /** Offset of {@code sector} (u64) in the request header. */
    public static final int HEADER_SECTOR_OFFSET = 8;
    /** Offset of {@code sector} (u64) in a discard/write-zeroes segment. */
    public static final int SEGMENT_SECTOR_OFFSET = 0;
    /** Offset of {@code num_sectors} (u32) in a discard/write-zeroes segment. */
    public static final int SEGMENT_NUM_SECTORS_OFFSET = 8;
    /** Offset of {@code flags} (u32) in a discard/write-zeroes segment; bit 0 is {@code unmap}. */
    public static final int SEGMENT_FLAGS_OFFSET = 12;

    private VirtioBlk() {
    }
}
