package dev.outproc.vfio.message;

/**
 * The vfio-user commands (vfio-user.rst, "Commands"), with their numbers and who sends them. Number 14,
 * {@code VFIO_USER_DIRTY_PAGES}, was retired with the first migration protocol: it is known so that it
 * can be refused by name ({@link #isRetired()}).
 */
public enum VfioUserCommand {
    /** 1: version and capability negotiation, the first message of a connection. */
    VERSION(1, Direction.CLIENT_TO_SERVER),
    /** 2: the client shares a DMA region. */
    DMA_MAP(2, Direction.CLIENT_TO_SERVER),
    /** 3: the client withdraws a DMA region (or all of them). */
    DMA_UNMAP(3, Direction.CLIENT_TO_SERVER),
    /** 4: device flags and region and IRQ counts. */
    DEVICE_GET_INFO(4, Direction.CLIENT_TO_SERVER),
    /** 5: one region's flags, size, mmap offset and capabilities. */
    DEVICE_GET_REGION_INFO(5, Direction.CLIENT_TO_SERVER),
    /** 6: ioeventfds/ioregionfds for parts of a region. */
    DEVICE_GET_REGION_IO_FDS(6, Direction.CLIENT_TO_SERVER),
    /** 7: one IRQ type's flags and count. */
    DEVICE_GET_IRQ_INFO(7, Direction.CLIENT_TO_SERVER),
    /** 8: eventfds, masks and triggers for interrupts. */
    DEVICE_SET_IRQS(8, Direction.CLIENT_TO_SERVER),
    /** 9: read bytes of a region. */
    REGION_READ(9, Direction.CLIENT_TO_SERVER),
    /** 10: write bytes of a region. */
    REGION_WRITE(10, Direction.CLIENT_TO_SERVER),
    /** 11: the server reads client memory it has no fd for. */
    DMA_READ(11, Direction.SERVER_TO_CLIENT),
    /** 12: the server writes client memory it has no fd for. */
    DMA_WRITE(12, Direction.SERVER_TO_CLIENT),
    /** 13: reset the device. */
    DEVICE_RESET(13, Direction.CLIENT_TO_SERVER),
    /** 14: {@code VFIO_USER_DIRTY_PAGES}, retired; refused. */
    DIRTY_PAGES_RETIRED(14, Direction.CLIENT_TO_SERVER),
    /** 15: several small region writes in one message. */
    REGION_WRITE_MULTI(15, Direction.CLIENT_TO_SERVER),
    /** 16: get, set or probe a device feature (migration, DMA logging). */
    DEVICE_FEATURE(16, Direction.CLIENT_TO_SERVER),
    /** 17: read migration data from a saving server. */
    MIG_DATA_READ(17, Direction.CLIENT_TO_SERVER),
    /** 18: write migration data into a resuming server. */
    MIG_DATA_WRITE(18, Direction.CLIENT_TO_SERVER);

    /** Who sends a command. */
    public enum Direction {
        /** Sent by the client, answered by the server. */
        CLIENT_TO_SERVER,
        /** Sent by the server, answered by the client. */
        SERVER_TO_CLIENT
    }

    private static final VfioUserCommand[] BY_CODE = new VfioUserCommand[19];

    static {
        for (VfioUserCommand c : values()) {
            BY_CODE[c.code] = c;
        }
    }

    private final int code;
    private final Direction direction;

    VfioUserCommand(int code, Direction direction) {
        this.code = code;
        this.direction = direction;
    }

    /** {@return the command number} */
    public int code() {
        return code;
    }

    /** {@return who sends this command} */
    public Direction direction() {
        return direction;
    }

    /** {@return whether this number is retired (14)} */
    public boolean isRetired() {
        return this == DIRTY_PAGES_RETIRED;
    }

    /**
     * Looks a command number up.
     *
     * @param code the number from a header
     * @return the command, or {@code null} when the number names none
     */
    public static VfioUserCommand of(int code) {
        return code > 0 && code < BY_CODE.length ? BY_CODE[code] : null;
    }
}
