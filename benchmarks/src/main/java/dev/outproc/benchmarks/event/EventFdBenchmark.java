package dev.outproc.benchmarks.event;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.fd.OwnedFd;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.util.concurrent.TimeUnit;

/**
 * One kick or call and its consumption: {@link EventFd#signal()} then {@link EventFd#drain()} in one
 * thread. {@code shared=true} is an eventfd a peer also holds (adopted, or its owner handed out): every
 * operation first checks readiness with {@code poll(2)} so that a peer clearing {@code O_NONBLOCK} cannot
 * make it block; {@code shared=false} is a private eventfd (one write, one read). The difference is the
 * price of that check. Score: ns per signal-and-drain; {@code -prof gc} shows it allocates nothing.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class EventFdBenchmark {
    /** Whether a peer holds the eventfd too. */
    @Param({"false", "true"})
    public boolean shared;

    private EventFd eventFd;
    private OwnedFd peerCopy;

    /**
     * Creates the eventfd.
     *
     * @throws Exception when eventfd(2) fails
     */
    @Setup
    public void setUp() throws Exception {
        eventFd = EventFd.create();
        if (shared) {
            peerCopy = eventFd.owner().duplicate();
        }
    }

    /** Closes the fds. */
    @TearDown
    public void tearDown() {
        eventFd.close();
        if (peerCopy != null) {
            peerCopy.close();
        }
    }

    /**
     * Signals and drains once.
     *
     * @return the drained count, 1
     * @throws Exception when a system call fails
     */
    @Benchmark
    public long signalAndDrain() throws Exception {
        eventFd.signal();
        return eventFd.drain();
    }
}
