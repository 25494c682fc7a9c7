package dev.outproc.core.memory;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Publishes {@link GuestMemory} snapshots atomically (copy on write) and owns the lifetime of their
 * regions: a region that leaves the table is unmapped when the new snapshot is published.
 *
 * <p>Readers call {@link #current()} at a safe point (before popping a batch of chains) and use that
 * snapshot for the batch. Writers must quiesce readers that could still use a removed region before
 * calling {@link #publish}; if one does not, its access throws {@link IllegalStateException}, never
 * touches unmapped memory.
 */
public final class GuestMemoryHolder implements AutoCloseable {
    private final AtomicReference<GuestMemory> current = new AtomicReference<>(GuestMemory.empty());

    /** {@return the current snapshot} */
    public GuestMemory current() {
        return current.get();
    }

    /**
     * Publishes a new snapshot and unmaps every region of the old one that the new one lacks.
     *
     * @param next the new table
     */
    public synchronized void publish(GuestMemory next) {
        GuestMemory previous = current.getAndSet(next);
        Set<GuestRegion> kept = Collections.newSetFromMap(new IdentityHashMap<>());
        kept.addAll(next.regions());
        for (GuestRegion r : previous.regions()) {
            if (!kept.contains(r)) {
                r.close();
            }
        }
    }

    /** Publishes the empty table, unmapping every region. */
    @Override
    public void close() {
        publish(GuestMemory.empty());
    }
}
