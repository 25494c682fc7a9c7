package dev.outproc.core.memory;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A peer that describes ever larger regions runs into the budget, and every release is counted once. */
class MappingBudgetTest {
    private static final long TIB = 1L << 40;

    @Test
    void sparseRegionsOfManyTebibytesShouldRunIntoTheBudget() throws Exception {
        MappingBudget budget = MappingBudget.of(64 * TIB);
        int accepted = 0;
        GuestMemoryException refused = null;
        for (int slot = 0; slot < 509; slot++) { // the most regions vhost-user allows
            try {
                budget.reserve(16 * TIB, "region " + slot).keep();
                accepted++;
            } catch (GuestMemoryException e) {
                refused = e;
                break;
            }
        }
        assertEquals(4, accepted);
        assertTrue(refused != null && refused.getMessage().contains("region 4"), String.valueOf(refused));
        assertEquals(64 * TIB, budget.reservedBytes());
    }

    @Test
    void aReservationNotKeptShouldBeGivenBackAndAKeptOneReleasedOnce() throws Exception {
        MappingBudget budget = MappingBudget.of(1 << 20);
        try (MappingBudget.Reservation r = budget.reserve(1 << 20, "failed mapping")) {
            assertEquals(1 << 20, budget.reservedBytes());
        }
        assertEquals(0, budget.reservedBytes(), "a mapping that failed gives its bytes back");
        MappingBudget.Reservation kept;
        try (MappingBudget.Reservation r = budget.reserve(4096, "region")) {
            kept = r.keep();
        }
        assertEquals(4096, budget.reservedBytes());
        kept.release();
        kept.release();
        assertEquals(0, budget.reservedBytes());
        assertThrows(GuestMemoryException.class, () -> budget.reserve((1 << 20) + 1, "too large"));
        assertThrows(IllegalArgumentException.class, () -> MappingBudget.of(0));
    }
}
