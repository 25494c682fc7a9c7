package dev.outproc.vhost.backend;

import java.time.Duration;

/**
 * A worker did not take or finish a control task within the back-end's
 * {@linkplain VhostUserBackend.Options#stallTimeout() stall timeout}: something its ring's peer controls
 * (or a device that blocks in {@link VhostUserDevice#processQueue}) holds it. The connection ends; waiting
 * longer would wedge the control thread, the disconnect and the shutdown with it.
 */
public final class WorkerStalledException extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    /** How long the control thread waited. */
    private final transient Duration waited;

    /**
     * Creates the exception.
     *
     * @param waited how long the control thread waited
     * @param cause the timeout, naming the worker
     */
    public WorkerStalledException(Duration waited, Throwable cause) {
        super("a worker did not answer within " + waited.toMillis() + " ms, closing the connection: "
                + cause.getMessage(), cause);
        this.waited = waited;
    }

    /** {@return how long the control thread waited} */
    public Duration waited() {
        return waited;
    }
}
