package dev.outproc.core.virtqueue;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Driver and device on two threads over memfd memory with eventfd kicks and calls and suppression on:
 * every chain arrives once with the right checksum, no wakeup is lost, and notifications are far fewer
 * than chains. The four runs exchange 10 million chains together (about 15 s on two cores); set
 * {@code -Dvirtqueue.twoThreadChains=N} to change the count per run.
 */
class VirtqueueTwoThreadTest {
    @ParameterizedTest(name = "packed={0} eventIdx={1} size={2}")
    @CsvSource({"false,true,256", "true,true,256", "false,false,128", "true,false,100"})
    void shouldExchangeChainsWithoutLossOrDuplicates(boolean packed, boolean eventIdx, int size) throws Exception {
        long chains = Long.getLong("virtqueue.twoThreadChains", 2_500_000L);
        TwoThreadExchange.Result r = TwoThreadExchange.run(packed, eventIdx, size, chains);
        check(r, chains);
    }

    static void check(TwoThreadExchange.Result r, long chains) {
        assertEquals(chains, r.chains(), r.toString());
        assertEquals(0, r.deviceLostWakeups(), "device waited with work pending: " + r);
        assertEquals(0, r.driverLostWakeups(), "driver waited with completions pending: " + r);
        // Suppression: a notification per batch at most, not per chain.
        assertTrue(r.kicks() < chains / 4, "too many kicks: " + r);
        assertTrue(r.calls() < chains / 4, "too many calls: " + r);
        System.getLogger(VirtqueueTwoThreadTest.class.getName()).log(System.Logger.Level.INFO, r.toString());
    }
}
