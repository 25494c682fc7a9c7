package dev.outproc.vfio.server;

/** The device states of migration v2 (linux/vfio.h {@code enum vfio_device_mig_state}; vfio-user.rst). */
public enum MigrationState {
    /** 0: the device failed and must be reset. */
    ERROR,
    /** 1: stopped; no internal or external state changes. */
    STOP,
    /** 2: running normally. */
    RUNNING,
    /** 3: stopped, its state can be read with MIG_DATA_READ. */
    STOP_COPY,
    /** 4: stopped, loading state written with MIG_DATA_WRITE. */
    RESUMING,
    /** 5: running without peer-to-peer DMA (not used in vfio-user). */
    RUNNING_P2P,
    /** 6: running while its state is read (initial bytes, then changes). */
    PRE_COPY,
    /** 7: PRE_COPY without peer-to-peer DMA (not used in vfio-user). */
    PRE_COPY_P2P;

    /** {@return the wire value} */
    public int code() {
        return ordinal();
    }

    /**
     * Looks a wire value up.
     *
     * @param code the value
     * @return the state, or {@code null} when it names none
     */
    public static MigrationState of(long code) {
        return code >= 0 && code < values().length ? values()[(int) code] : null;
    }

    /** {@return whether this state is in the saving group (PRE_COPY, STOP_COPY and their P2P forms)} */
    public boolean isSaving() {
        return this == PRE_COPY || this == STOP_COPY || this == PRE_COPY_P2P;
    }
}
