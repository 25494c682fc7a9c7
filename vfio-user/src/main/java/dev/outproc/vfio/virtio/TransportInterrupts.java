package dev.outproc.vfio.virtio;

import dev.outproc.vfio.pci.PciDevice;

import java.io.IOException;
import java.util.function.Supplier;

import static java.lang.System.Logger.Level.TRACE;
import static java.lang.System.Logger.Level.WARNING;

/**
 * The notifications of a {@link VirtioPciDevice} to its driver (VIRTIO 1.2 §4.1.5.3, §4.1.5.4): the MSI-X vector the
 * driver assigned, or, with MSI-X disabled, INTx with the ISR bit saying why. A masked vector sets its pending bit in
 * the PCI function instead.
 */
final class TransportInterrupts {
    private static final System.Logger LOG = System.getLogger(VirtioPciDevice.class.getName());

    private final TransportRegisters registers;
    /** The PCI function, built after the parts that raise interrupts. */
    private final Supplier<PciDevice> pci;

    TransportInterrupts(TransportRegisters registers, Supplier<PciDevice> pci) {
        this.registers = registers;
        this.pci = pci;
    }

    /** A used-buffer notification for a queue: its MSI-X vector, or INTx with the ISR queue bit. */
    void queue(PciQueue q) throws IOException {
        raise(q.msixVector, VirtioPciDevice.ISR_QUEUE);
    }

    /** A configuration-change notification: the generation moves, then the configuration vector or INTx fires. */
    void config() {
        registers.configGeneration.incrementAndGet();
        try {
            raise(registers.configMsixVector, VirtioPciDevice.ISR_CONFIG);
        } catch (IOException e) {
            LOG.log(WARNING, "configuration interrupt failed: " + e.getMessage());
        }
    }

    private void raise(int vector, int isrBit) throws IOException {
        PciDevice function = pci.get();
        if (LOG.isLoggable(TRACE)) {
            LOG.log(TRACE, "interrupt: vector " + vector + ", ISR bit " + isrBit + (function.msixEnabled() ? ", MSI-X" : ", INTx"));
        }
        if (function.msixEnabled()) {
            if (vector != CommonConfig.NO_VECTOR) {
                function.raise(vector);
            }
            return;
        }
        registers.isr.getAndUpdate(v -> v | isrBit);
        function.raise(0);
    }
}
