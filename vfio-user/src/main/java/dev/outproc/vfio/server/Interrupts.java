package dev.outproc.vfio.server;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.fd.Errno;
import dev.outproc.core.fd.NativeException;
import dev.outproc.core.transport.ReceivedFds;
import dev.outproc.vfio.message.IrqSet;
import dev.outproc.vfio.message.VfioUserProtocolException;

import java.lang.foreign.MemorySegment;

/**
 * A device's interrupts as a client configured them with {@code VFIO_USER_DEVICE_SET_IRQS}: per IRQ index
 * (for PCI: 0 INTx, 1 MSI, 2 MSI-X, 3 ERR, 4 REQ) an eventfd, a mask bit and a pending bit per sub-index.
 * {@link #trigger} signals the eventfd, or marks the interrupt pending while it is masked; unmasking
 * delivers a pending interrupt. The eventfds came from the client and are closed when replaced, when
 * de-assigned and when the client goes ({@link #closeAll}).
 *
 * <p>Semantics of each flag combination (Linux {@code vfio_pci_set_irqs_ioctl}, vfio-user.rst):
 * <ul>
 * <li>DATA_EVENTFD + TRIGGER: install {@code count} eventfds from {@code start}; no fds de-assigns them.</li>
 * <li>DATA_NONE or DATA_BOOL + TRIGGER: trigger the (selected) interrupts as the device would; DATA_NONE
 * with count 0 disables the whole index (its eventfds are closed).</li>
 * <li>DATA_NONE or DATA_BOOL + MASK / UNMASK: mask or unmask the (selected) interrupts.</li>
 * <li>DATA_EVENTFD + MASK / UNMASK: eventfds that signal masking; refused with ENOTSUP (no peer uses them).</li>
 * </ul>
 * Methods are synchronized per instance; triggering allocates nothing.
 */
public final class Interrupts {
    /** PCI IRQ index of INTx ({@code VFIO_PCI_INTX_IRQ_INDEX}). */
    public static final int INTX = 0;
    /** PCI IRQ index of MSI. */
    public static final int MSI = 1;
    /** PCI IRQ index of MSI-X. */
    public static final int MSIX = 2;
    /** PCI IRQ index of the error notification. */
    public static final int ERR = 3;
    /** PCI IRQ index of the device request. */
    public static final int REQ = 4;

    private final EventFd[][] eventFds;
    private final boolean[][] masked;
    private final boolean[][] pending;

    /**
     * Creates the state for a device's IRQ indexes.
     *
     * @param counts the number of interrupts per index
     */
    public Interrupts(int[] counts) {
        eventFds = new EventFd[counts.length][];
        masked = new boolean[counts.length][];
        pending = new boolean[counts.length][];
        for (int i = 0; i < counts.length; i++) {
            eventFds[i] = new EventFd[counts[i]];
            masked[i] = new boolean[counts[i]];
            pending[i] = new boolean[counts[i]];
        }
    }

    /**
     * Raises an interrupt: signals its eventfd, or marks it pending while masked or without an eventfd.
     *
     * @param index the IRQ index
     * @param vector the sub-index
     * @return whether an eventfd was signalled
     * @throws NativeException when the eventfd write fails
     */
    public synchronized boolean trigger(int index, int vector) throws NativeException {
        if (masked[index][vector] || eventFds[index][vector] == null) {
            pending[index][vector] = true;
            return false;
        }
        eventFds[index][vector].signal();
        return true;
    }

    /**
     * {@return whether an interrupt is masked}
     *
     * @param index the IRQ index
     * @param vector the sub-index
     */
    public synchronized boolean isMasked(int index, int vector) {
        return masked[index][vector];
    }

    /**
     * {@return whether an interrupt is pending}
     *
     * @param index the IRQ index
     * @param vector the sub-index
     */
    public synchronized boolean isPending(int index, int vector) {
        return pending[index][vector];
    }

    /**
     * {@return whether an interrupt has an eventfd}
     *
     * @param index the IRQ index
     * @param vector the sub-index
     */
    public synchronized boolean hasEventFd(int index, int vector) {
        return eventFds[index][vector] != null;
    }

    /**
     * Masks or unmasks an interrupt; unmasking delivers a pending one.
     *
     * @param index the IRQ index
     * @param vector the sub-index
     * @param mask true to mask
     * @throws NativeException when delivering fails
     */
    public synchronized void mask(int index, int vector, boolean mask) throws NativeException {
        masked[index][vector] = mask;
        if (!mask && pending[index][vector] && eventFds[index][vector] != null) {
            pending[index][vector] = false;
            eventFds[index][vector].signal();
        }
    }

    /**
     * Applies a {@code VFIO_USER_DEVICE_SET_IRQS} command (its syntax already checked).
     *
     * @param set the command's payload
     * @param segment the message buffer (for DATA_BOOL's bytes)
     * @param fds the eventfds that came with it (taken on success)
     * @throws VfioUserProtocolException EINVAL for an index or range the device lacks or a count of fds that
     *         is neither 0 nor {@code count}; ENOTSUP for eventfd-signalled masking
     */
    public synchronized void setIrqs(IrqSet.Decoder set, MemorySegment segment, ReceivedFds fds) throws VfioUserProtocolException {
        long index = set.index();
        if (index >= eventFds.length) {
            throw new VfioUserProtocolException(Errno.EINVAL, "SET_IRQS index " + index + " beyond " + eventFds.length + " IRQ indexes");
        }
        int i = (int) index;
        long start = set.start();
        long count = set.count();
        long flags = set.flags();
        long data = flags & IrqSet.DATA_MASK;
        long action = flags & IrqSet.ACTION_MASK_BITS;
        if (data == IrqSet.DATA_NONE && count == 0 && action == IrqSet.ACTION_TRIGGER) {
            for (int v = 0; v < eventFds[i].length; v++) {
                replace(i, v, null);
                pending[i][v] = false;
            }
            return;
        }
        if (start + count > eventFds[i].length) {
            throw new VfioUserProtocolException(Errno.EINVAL, "SET_IRQS start " + start + " + count " + count
                    + " beyond the " + eventFds[i].length + " interrupts of index " + index);
        }
        if (data == IrqSet.DATA_EVENTFD) {
            if (action != IrqSet.ACTION_TRIGGER) {
                throw new VfioUserProtocolException(Errno.ENOTSUP, "SET_IRQS eventfds for mask/unmask events are not supported");
            }
            if (fds.count() != 0 && fds.count() != count) {
                throw new VfioUserProtocolException(Errno.EINVAL, "SET_IRQS DATA_EVENTFD carried " + fds.count() + " fds for count " + count);
            }
            EventFd[] adopted = new EventFd[(int) count];
            try {
                for (int k = 0; k < fds.count(); k++) {
                    adopted[k] = EventFd.adopt(fds.take(k));
                }
            } catch (NativeException e) {
                for (EventFd a : adopted) {
                    if (a != null) {
                        a.close();
                    }
                }
                throw new VfioUserProtocolException(Errno.EINVAL, "SET_IRQS fd is not an eventfd: " + e.getMessage());
            }
            for (int k = 0; k < count; k++) {
                replace(i, (int) start + k, adopted[k]);
            }
            return;
        }
        for (int k = 0; k < count; k++) {
            if (data == IrqSet.DATA_BOOL && segment.get(dev.outproc.vfio.message.WireLayout.NATIVE_U8, set.dataOffset() + k) == 0) {
                continue;
            }
            int v = (int) start + k;
            try {
                if (action == IrqSet.ACTION_TRIGGER) {
                    trigger(i, v);
                } else {
                    mask(i, v, action == IrqSet.ACTION_MASK);
                }
            } catch (NativeException e) {
                throw new VfioUserProtocolException(Errno.EIO, "SET_IRQS signalling failed: " + e.getMessage());
            }
        }
    }

    private void replace(int index, int vector, EventFd next) {
        EventFd old = eventFds[index][vector];
        eventFds[index][vector] = next;
        if (old != null) {
            old.close();
        }
    }

    /** Closes every eventfd and clears mask and pending bits (the client went, or the device was reset). */
    public synchronized void closeAll() {
        for (int i = 0; i < eventFds.length; i++) {
            for (int v = 0; v < eventFds[i].length; v++) {
                replace(i, v, null);
                masked[i][v] = false;
                pending[i][v] = false;
            }
        }
    }

    /** {@return how many eventfds are installed (for leak checks)} */
    public synchronized int installedCount() {
        int n = 0;
        for (EventFd[] index : eventFds) {
            for (EventFd e : index) {
                if (e != null) {
                    n++;
                }
            }
        }
        return n;
    }

}
