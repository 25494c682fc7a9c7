/**
 * Split and packed virtqueues (VIRTIO 1.x §2.7, §2.8), device side and driver side.
 *
 * <h2 id="device">Device side</h2>
 * {@link dev.outproc.core.virtqueue.DeviceQueue} is what a back-end drives; {@link dev.outproc.core.virtqueue.SplitQueue}
 * and {@link dev.outproc.core.virtqueue.PackedQueue} implement it. A queue is configured from a
 * {@link dev.outproc.core.virtqueue.QueueConfig} (name, size, the three ring addresses, negotiated
 * features: {@code VIRTIO_F_INDIRECT_DESC}, {@code VIRTIO_F_EVENT_IDX}, {@code VIRTIO_F_IN_ORDER}) and a
 * {@link dev.outproc.core.memory.GuestMemory} snapshot, then hands out
 * {@link dev.outproc.core.virtqueue.DescriptorChain}s: zero-copy views of the guest's buffers, readable
 * ones first. {@code addUsed} writes the used entry and publishes it; {@code stageUsed}/{@code publishUsed}
 * and {@code addUsedBatch} publish a batch with one release store. {@code needsNotification} and
 * {@code enableNotifications}/{@code disableNotifications} implement event suppression with either the
 * event index or the flags.
 *
 * <h2 id="validation">Untrusted guest</h2>
 * Everything read from guest memory is validated before use: descriptor indices below the queue size, at
 * most {@code size} descriptors per chain (a loop ends) and at most 1024 buffers with indirect tables
 * expanded ({@link dev.outproc.core.virtqueue.DescriptorChain#MAX_BUFFERS}; zero-length descriptors count
 * too), indirect tables non-empty, a multiple of 16 bytes, at most 1024 entries, inside one guest region, never
 * nested and never combined with NEXT; readable
 * descriptors never after writable ones; every address + length inside guest memory without wrapping
 * past 2^64; a chain's total length below 2^32; the avail index never more than {@code size} ahead;
 * packed buffer ids below the size and not already in flight; ring addresses aligned and inside guest
 * memory; split sizes a power of two up to 32768, packed sizes 1..32768. A violation throws
 * {@link dev.outproc.core.virtqueue.VirtqueueException} with a {@link dev.outproc.core.virtqueue.VirtqueueException.Reason},
 * the queue's name, the head and the values, and marks the queue broken. A buffer that spans two guest
 * regions is refused (reported as outside memory). Guest memory unmapped under a chain gives
 * {@code MEMORY_UNMAPPED}, never a raw {@code IllegalStateException}.
 *
 * <h2 id="ordering">Memory ordering</h2>
 * Ring indices and flags that hand data from one side to the other use aligned little-endian
 * {@code VarHandle}s: acquire loads (avail.idx, used.idx, packed descriptor flags, event structures) and
 * release stores (the same fields on the writing side); everything they publish is accessed plainly. A
 * full fence ({@link java.lang.invoke.VarHandle#fullFence()}) precedes every suppression check, on both
 * sides, because each side stores its index and then reads the other's suppression field: without it
 * both could miss the other's update and sleep forever.
 *
 * <h2 id="allocation">Allocation</h2>
 * {@code pop}, {@code stageUsed}, {@code publishUsed}, {@code addUsed}, {@code addUsedBatch},
 * {@code needsNotification} and the notification toggles allocate nothing in steady state: a queue keeps
 * one chain object per head (split) or buffer id (packed); see the
 * <a href="DescriptorChain.html#reuse">reuse contract</a>. The driver side's {@code add}, {@code post},
 * {@code publish}, {@code kickNeeded} and {@code pollUsed} allocate nothing either. The
 * {@code benchmarks} module measures both with JMH and {@code -prof gc}.
 *
 * <h2 id="state">State, restart, observers</h2>
 * {@link dev.outproc.core.virtqueue.QueueState} carries size, addresses, next avail and next used indices,
 * wrap counters (packed) and the event-index flag for migration and restart; {@code inFlightIds} lists
 * chains in flight in pop order; {@code resubmit} makes given chains pop again first (vhost-user inflight
 * recovery). A {@link dev.outproc.core.virtqueue.QueueObserver} sees pops, completions and publications
 * (to keep a vhost-user inflight region current). {@code setDirtyLog} logs device writes for live
 * migration.
 *
 * <h2 id="driver">Driver side</h2>
 * {@link dev.outproc.core.virtqueue.DriverQueue} ({@link dev.outproc.core.virtqueue.SplitDriverQueue},
 * {@link dev.outproc.core.virtqueue.PackedDriverQueue}) plays the guest: it lays out rings (with a
 * {@link dev.outproc.core.virtqueue.GpaAllocator} if wanted), posts chains directly or through indirect
 * tables, decides on kicks, reaps used entries (validating what the device wrote) and toggles used-buffer
 * notifications. Front-ends, tests and benchmarks use it.
 *
 * <p>Queues are not thread-safe: one thread drives a device queue, one thread a driver queue; the two
 * sides may run on different threads or processes.
 */
package dev.outproc.core.virtqueue;
