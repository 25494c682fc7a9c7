package dev.outproc.core.transport;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.internal.linux.Sockets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link UnixListener#adopt} ({@code --fd}) takes a listening socket only; any other number is refused at once, with
 * what it is instead, and is left open: it belongs to someone else.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class UnixListenerAdoptTest {
    @TempDir
    Path dir;

    @Test
    void aListeningSocketShouldBeAdoptedAndServe() throws Exception {
        int raw = Sockets.socket();
        Path path = dir.resolve("inherited.sock");
        Sockets.bind(raw, path.toString());
        Sockets.listen(raw, 4);
        try (UnixListener listener = UnixListener.adopt(OwnedFd.of(raw));
             MessageChannel client = MessageChannel.connect(path);
             MessageChannel served = listener.accept()) {
            assertTrue(served.isOpen() && client.isOpen());
        }
    }

    @Test
    void anFdThatIsNotASocketShouldBeRefusedAndLeftOpen() throws Exception {
        try (EventFd event = EventFd.create()) {
            TransportException e = assertThrows(TransportException.class, () -> UnixListener.adopt(OwnedFd.of(event.fd())));
            assertEquals("fd " + event.fd() + " is not a socket (ENOTSOCK)", e.getMessage());
            event.signal();
            assertEquals(1, event.drain(), "the eventfd is still open and still its owner's");
        }
    }

    @Test
    void aConnectedSocketShouldBeRefusedAndLeftOpen() throws Exception {
        MessageChannel.Pair pair = MessageChannel.pair();
        try (MessageChannel a = pair.channel(); OwnedFd b = pair.peerFd()) {
            int n = b.get();
            TransportException e = assertThrows(TransportException.class, () -> UnixListener.adopt(OwnedFd.of(n)));
            assertTrue(e.getMessage().contains("does not listen"), e.getMessage());
            assertTrue(b.isOpen());
            try (MessageChannel peer = MessageChannel.adopt(b.transfer())) {
                assertTrue(peer.isOpen(), "the connected socket still works");
            }
        }
    }

    @Test
    void aNumberThatNamesNoOpenFileShouldBeRefused() {
        TransportException e = assertThrows(TransportException.class, () -> UnixListener.adopt(OwnedFd.of(987_654)));
        assertEquals("fd 987654 is not open", e.getMessage());
    }
}
