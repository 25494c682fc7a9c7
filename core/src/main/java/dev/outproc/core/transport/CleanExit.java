package dev.outproc.core.transport;

import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * What a serving program has opened (listening sockets, endpoints, connections), closed in reverse order when it
 * stops: on {@link #close()}, or from a shutdown hook on SIGTERM or Ctrl-C, whenever the signal arrives.
 *
 * <p>The hook exists before the first resource does, and a resource is handed over from inside {@link #open}: a
 * signal while a socket is being bound waits (up to {@value #OPEN_WAIT_SECONDS} s) for the bind to finish and then
 * closes it too, so no socket file outlives the process, whatever moment the signal picks. After the signal,
 * {@link #open} opens nothing and {@link #own} closes what it is given; both throw, so that the program stops
 * instead of serving on.
 */
public final class CleanExit implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(CleanExit.class.getName());

    /** How long a signal waits for a resource that is being opened. */
    static final int OPEN_WAIT_SECONDS = 5;

    /** Opens one resource. */
    @FunctionalInterface
    public interface Opener<T extends AutoCloseable> {
        /**
         * {@return the opened resource}
         *
         * @throws IOException when it cannot be opened
         */
        T open() throws IOException;
    }

    private final String program;
    private final Thread hook;
    private final Deque<AutoCloseable> owned = new ArrayDeque<>();
    private int opening;
    private boolean stopping;
    private boolean closing;

    /**
     * Installs the shutdown hook.
     *
     * @param program the program's name, for the hook thread and for the log message of a failed close
     */
    public CleanExit(String program) {
        this.program = program;
        this.hook = new Thread(this::closeAll, program + "-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
    }

    /**
     * Opens a resource and owns it from then on.
     *
     * @param <T> the resource's type
     * @param opener opens it
     * @return the resource
     * @throws IOException when it cannot be opened, or when the program is stopping (it is then closed again)
     */
    public <T extends AutoCloseable> T open(Opener<T> opener) throws IOException {
        synchronized (this) {
            if (stopping) {
                throw new IOException(program + " is stopping");
            }
            opening++;
        }
        T resource = null;
        boolean stopped;
        boolean tooLate;
        try {
            resource = opener.open();
        } finally {
            synchronized (this) {
                opening--;
                stopped = stopping;
                // While the stop waits for this open, it still closes what is pushed now.
                tooLate = closing;
                if (resource != null && !tooLate) {
                    owned.push(resource);
                }
                notifyAll();
            }
        }
        if (tooLate && resource != null) {
            closeQuietly(resource);
        }
        if (stopped) {
            throw new IOException(program + " is stopping");
        }
        return resource;
    }

    /**
     * Owns something already open (a server object, a disconnect action) so that it is closed with the rest.
     *
     * @param <T> its type
     * @param resource what to close
     * @return the resource
     * @throws IOException when the program is stopping (it is then closed at once)
     */
    public <T extends AutoCloseable> T own(T resource) throws IOException {
        boolean stopped;
        boolean tooLate;
        synchronized (this) {
            stopped = stopping;
            tooLate = closing;
            if (!tooLate) {
                owned.push(resource);
            }
        }
        if (tooLate) {
            closeQuietly(resource);
        }
        if (stopped) {
            throw new IOException(program + " is stopping");
        }
        return resource;
    }

    /**
     * Runs an action when the program stops, in its place among the owned resources.
     *
     * @param action what to run, such as disconnecting a client
     * @throws IOException when the program is stopping (the action then runs at once)
     */
    public void onStop(Runnable action) throws IOException {
        AutoCloseable closer = action::run;
        own(closer);
    }

    /** Closes everything owned, newest first, and removes the shutdown hook. */
    @Override
    public void close() {
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
            // the hook is running: it closes everything
        }
        closeAll();
    }

    private void closeAll() {
        List<AutoCloseable> toClose;
        synchronized (this) {
            stopping = true;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(OPEN_WAIT_SECONDS);
            long left;
            while (opening > 0 && (left = deadline - System.nanoTime()) > 0) {
                try {
                    TimeUnit.NANOSECONDS.timedWait(this, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            closing = true;
            toClose = new ArrayList<>(owned);
            owned.clear();
        }
        toClose.forEach(this::closeQuietly);
    }

    private void closeQuietly(AutoCloseable resource) {
        try {
            resource.close();
        } catch (Exception e) {
            LOG.log(System.Logger.Level.WARNING, program + ": closing " + resource + " failed", e);
        }
    }
}
