package dev.outproc.examples.migration;

import dev.outproc.migration.stream.ArrayReader;
import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.Envelope;
import dev.outproc.migration.stream.FieldReader;
import dev.outproc.migration.stream.SectionInfo;
import dev.outproc.migration.stream.StreamHeader;
import dev.outproc.migration.stream.StreamTrailer;
import java.io.IOException;
import java.io.PrintWriter;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HexFormat;

/** Decodes any stream without knowing its format class and prints it, like QEMU's analyze-migration.py. */
final class StreamPrinter {
    /** Bytes of a blob shown in hex. */
    static final int PREVIEW_BYTES = 16;

    private final PrintWriter out;
    private final boolean print;

    StreamPrinter(PrintWriter out, boolean print) {
        this.out = out;
        this.print = print;
    }

    private void line(int indent, String s) {
        if (print) {
            out.println("  ".repeat(indent) + s);
        }
    }

    StreamTrailer walk(DeviceStateReader r) throws IOException {
        StreamHeader h = r.header();
        line(0, "header: stream version " + h.streamVersion() + ", " + h.headerLength() + " bytes, flags "
                + (h.hasDigests() ? "DIGESTS " : "") + (h.hasMac() ? "MAC " : "") + (h.hasSignature() ? "SIGNATURE" : "")
                + (h.flags() == 0 ? "none" : ""));
        line(1, "model:          " + h.modelId());
        line(1, "format class:   " + h.formatClass() + " version " + h.formatVersion());
        line(1, "implementation: " + h.implementationId());
        line(1, "nonce:          " + HexFormat.of().formatHex(h.nonce()));
        line(1, "handshake hash: " + HexFormat.of().formatHex(h.handshakeHash()));
        SectionInfo s;
        while ((s = r.nextSection()) != null) {
            line(0, "section " + s.idString() + " version " + s.version() + " #" + s.sequence() + " at offset " + s.offset()
                    + (s.mustUnderstand() ? " must-understand" : " skippable") + (s.envelope() ? " envelope" : ""));
            if (s.envelope()) {
                Envelope e = r.envelope();
                line(1, "vendor " + e.vendorId() + " schema " + e.schemaVersion() + " payload " + e.payloadLength() + " bytes");
                try (Arena arena = Arena.ofConfined()) {
                    // Bounded by the chunk reader, but a huge payload would still be a huge allocation: preview it through a window.
                    if (e.payloadLength() <= 1 << 20) {
                        MemorySegment p = arena.allocate(Math.max(1, e.payloadLength())).asSlice(0, e.payloadLength());
                        r.readEnvelopePayload(p);
                        line(2, preview(p));
                    }
                }
            } else {
                fields(r.fields(), 1);
            }
        }
        StreamTrailer t = r.finish();
        line(0, "trailer: " + t.sectionCount() + " sections, " + t.streamBytes() + " bytes");
        if (t.transcript() != null) {
            line(1, "transcript: " + HexFormat.of().formatHex(t.transcript()));
        }
        return t;
    }

    private void fields(FieldReader f, int indent) throws IOException {
        while (f.next()) {
            String head = "field " + f.tag() + " " + f.type() + ": ";
            switch (f.type()) {
                case BOOL -> line(indent, head + f.bool());
                case INT8, INT16, INT32, INT64 -> {
                    long v = f.longValue();
                    line(indent, head + v + " (0x" + Long.toHexString(v) + ")");
                }
                case STRING -> line(indent, head + "\"" + f.string() + "\"");
                case BYTES -> {
                    long len = f.bytesLength();
                    if (len <= 1 << 20) {
                        try (Arena arena = Arena.ofConfined()) {
                            MemorySegment b = arena.allocate(Math.max(1, len)).asSlice(0, len);
                            f.readBytesBody(b);
                            line(indent, head + len + " bytes " + preview(b));
                        }
                    } else {
                        f.skipBytesBody();
                        line(indent, head + len + " bytes");
                    }
                }
                case RECORD -> {
                    line(indent, head);
                    fields(f.record(), indent + 1);
                }
                case ARRAY -> {
                    ArrayReader a = f.array();
                    line(indent, head + a.count() + " x " + a.elementType());
                    int i = 0;
                    while (a.hasNext()) {
                        switch (a.elementType()) {
                            case BOOL -> line(indent + 1, "[" + i + "] " + a.nextBool());
                            case INT8, INT16, INT32, INT64 -> line(indent + 1, "[" + i + "] " + a.nextLong());
                            case STRING -> line(indent + 1, "[" + i + "] \"" + a.nextString() + "\"");
                            case RECORD -> {
                                line(indent + 1, "[" + i + "]");
                                fields(a.nextRecord(), indent + 2);
                            }
                            default -> {
                                a.skipRest();
                                line(indent + 1, "(elements of type " + a.elementType() + " not shown)");
                            }
                        }
                        i++;
                    }
                }
                default -> f.skip();
            }
        }
    }

    private static String preview(MemorySegment b) {
        int n = (int) Math.min(PREVIEW_BYTES, b.byteSize());
        byte[] head = new byte[n];
        MemorySegment.copy(b, ValueLayout.JAVA_BYTE, 0, head, 0, n);
        return "[" + HexFormat.of().formatHex(head) + (b.byteSize() > n ? " ..." : "") + "]";
    }
}
