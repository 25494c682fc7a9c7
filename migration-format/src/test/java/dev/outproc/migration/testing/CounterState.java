package dev.outproc.migration.testing;

import java.util.Arrays;
import java.util.List;

/**
 * State of the example counter device of the golden corpus (model {@code outproc.dev/example/counter}).
 *
 * @param queueSize queue size
 * @param counter the counter
 * @param label a label
 * @param flags added in format version 2 (default 0)
 * @param ram device RAM
 * @param requests statistics, format version 2 (skippable)
 * @param latencyHistogram statistics, format version 2 (skippable)
 * @param rings ring positions, format version 2 (must-understand)
 * @param acmeExtras vendor envelope payload, or null
 */
public record CounterState(int queueSize, long counter, String label, int flags, byte[] ram, long requests,
        long[] latencyHistogram, List<Ring> rings, byte[] acmeExtras) {

    /** Model id. */
    public static final String MODEL = "outproc.dev/example/counter";
    /** Format class id. */
    public static final String FORMAT = "outproc.dev/example/counter/state";
    /** Vendor of the envelope. */
    public static final String ACME = "example.com/acme";

    /**
     * A ring position.
     *
     * @param index queue index
     * @param size queue size
     * @param nextAvail next available index
     * @param nextUsed next used index
     */
    public record Ring(int index, int size, int nextAvail, int nextUsed) {}

    /** @return the state of a v1 device: what a v1 stream can carry */
    public CounterState asV1() {
        return new CounterState(queueSize, counter, label, 0, ram, 0, new long[0], List.of(), acmeExtras);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof CounterState s && queueSize == s.queueSize && counter == s.counter && label.equals(s.label)
                && flags == s.flags && Arrays.equals(ram, s.ram) && requests == s.requests
                && Arrays.equals(latencyHistogram, s.latencyHistogram) && rings.equals(s.rings) && Arrays.equals(acmeExtras, s.acmeExtras);
    }

    @Override
    public int hashCode() {
        return Long.hashCode(counter) ^ Arrays.hashCode(ram);
    }

    @Override
    public String toString() {
        return "CounterState[queueSize=" + queueSize + ", counter=" + counter + ", label=" + label + ", flags=" + flags
                + ", ram=" + ram.length + " bytes, requests=" + requests + ", histogram=" + Arrays.toString(latencyHistogram)
                + ", rings=" + rings + ", acme=" + (acmeExtras == null ? "none" : acmeExtras.length + " bytes") + "]";
    }

    /** @return the sample state the corpus is written from */
    public static CounterState sample() {
        byte[] ram = new byte[64];
        for (int i = 0; i < ram.length; i++) {
            ram[i] = (byte) (i * 31 + 7);
        }
        return new CounterState(128, 0x0102030405060708L, "counter-0", 0x5, ram, 4242, new long[] {1, 5, 17, 3},
                List.of(new Ring(0, 128, 17, 15), new Ring(1, 128, 3, 3)), new byte[] {(byte) 0xca, (byte) 0xfe, 0x00, 0x01});
    }
}
