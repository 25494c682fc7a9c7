package dev.outproc.migration.model;

import dev.outproc.migration.stream.ArrayReader;
import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.Envelope;
import dev.outproc.migration.stream.FieldReader;
import dev.outproc.migration.stream.FieldType;
import dev.outproc.migration.stream.SectionInfo;
import dev.outproc.migration.stream.StreamFormatException;
import dev.outproc.migration.stream.StreamLimits;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads a whole stream by its format version's schema from the registry (registry-format.md §3.3–3.5) and applies the
 * reader rules a device would otherwise write by hand: a known tag with another wire type is refused, an absent field
 * takes its default and an absent field without one is refused, a listed section that is not optional must be present,
 * unknown fields and skippable sections are skipped (must-understand ones refused), and the format version's
 * declarative checks hold. The result is a tree of plain values, returned only after the trailer verified:
 * <ul>
 * <li>integers as {@link Long} (an unsigned field's value zero-extended; an unsigned 64-bit value above 2^63 − 1 keeps
 * its bits), booleans as {@link Boolean}, strings as {@link String}, byte strings as {@code byte[]};
 * <li>a record as a {@code Map<String, Object>} by field name, an array as a {@code List<Object>};
 * <li>a section as a {@code Map<String, Object>} by field name; an envelope section as {@code vendor}, {@code schema},
 * {@code payload}.
 * </ul>
 * It suits small sections (configuration, ring positions) and tools; a device with large blobs reads those sections
 * itself and still calls {@link #check(FormatVersion, Map)} on what it staged.
 */
public final class StateSchemaReader {
    private StateSchemaReader() {}

    /**
     * Reads and verifies a stream by its schema.
     *
     * @param reader an open reader positioned before the first section
     * @param version the schema of the stream's format version
     * @return sections by name, each a map of field name to value
     * @throws IOException if the stream is malformed, does not verify, or breaks the schema or its checks
     */
    public static Map<String, Map<String, Object>> read(DeviceStateReader reader, FormatVersion version) throws IOException {
        if (reader.header().formatVersion() != version.version()) {
            throw new StreamFormatException("stream has format version " + reader.header().formatVersion() + ", the schema is for version " + version.version());
        }
        Map<String, Map<String, Object>> state = new LinkedHashMap<>();
        SectionInfo s;
        while ((s = reader.nextSection()) != null) {
            SectionSchema schema = version.section(s.id()).orElse(null);
            if (schema == null || schema.version() != s.version() || schema.envelope() != s.envelope()) {
                reader.skipSection();
                continue;
            }
            if (schema.envelope()) {
                Envelope e = reader.envelope();
                if (e.payloadLength() > StreamLimits.MAX_HEAP_BYTES) {
                    throw new StreamFormatException("envelope " + schema.name() + " payload of " + e.payloadLength() + " bytes is too large for a schema read");
                }
                byte[] payload;
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment seg = arena.allocate(Math.max(1, e.payloadLength())).asSlice(0, e.payloadLength());
                    reader.readEnvelopePayload(seg);
                    payload = seg.toArray(ValueLayout.JAVA_BYTE);
                }
                Map<String, Object> env = new LinkedHashMap<>();
                env.put("vendor", e.vendorId());
                env.put("schema", (long) e.schemaVersion());
                env.put("payload", payload);
                state.put(schema.name(), env);
            } else {
                state.put(schema.name(), fields(reader.fields(), schema.fields(), "section " + schema.name()));
            }
        }
        for (SectionSchema schema : version.sections()) {
            if (!schema.optional() && !state.containsKey(schema.name())) {
                throw new StreamFormatException("required section " + schema.name() + " (id " + Integer.toUnsignedString(schema.id())
                        + ") of format version " + version.version() + " is missing");
            }
        }
        check(version, state);
        return state;
    }

    private static Map<String, Object> fields(FieldReader f, List<FieldSchema> schema, String where) throws IOException {
        Map<String, Object> values = new LinkedHashMap<>();
        while (f.next()) {
            FieldSchema fs = schema.stream().filter(x -> x.tag() == f.tag()).findFirst().orElse(null);
            if (fs == null) {
                f.skip();
                continue;
            }
            values.put(fs.name(), value(f, fs, where));
        }
        for (FieldSchema fs : schema) {
            if (!values.containsKey(fs.name())) {
                if (fs.defaultValue() == null) {
                    throw new StreamFormatException(where + ": field " + fs.name() + " (tag " + fs.tag() + ") is absent and has no default");
                }
                values.put(fs.name(), defaultValue(fs));
            }
        }
        return values;
    }

    private static Object value(FieldReader f, FieldSchema fs, String where) throws IOException {
        return switch (fs.type()) {
            case "bool" -> f.bool();
            case "int8" -> fs.signed() ? (long) f.int8() : (long) (f.int8() & 0xff);
            case "int16" -> fs.signed() ? (long) f.int16() : (long) (f.int16() & 0xffff);
            case "int32" -> fs.signed() ? (long) f.int32() : Integer.toUnsignedLong(f.int32());
            case "int64" -> f.int64();
            case "bytes" -> f.bytes();
            case "string" -> f.string();
            case "record" -> fields(f.record(), fs.fields(), where + " record " + fs.name());
            case "array" -> array(f.array(), fs, where);
            default -> throw new IllegalStateException(fs.type());
        };
    }

    private static List<Object> array(ArrayReader a, FieldSchema fs, String where) throws IOException {
        FieldType want = FieldType.valueOf(fs.element().toUpperCase(java.util.Locale.ROOT));
        if (a.elementType() != want) {
            throw new StreamFormatException(where + ": array " + fs.name() + " holds " + a.elementType() + ", the schema says " + want);
        }
        if (a.count() > StreamLimits.MAX_HEAP_ARRAY_ELEMENTS) {
            throw new StreamFormatException(where + ": array " + fs.name() + " has " + a.count() + " elements, more than " + StreamLimits.MAX_HEAP_ARRAY_ELEMENTS);
        }
        List<Object> out = new ArrayList<>();
        while (a.hasNext()) {
            out.add(switch (want) {
                case BOOL -> a.nextBool();
                case INT8 -> fs.signed() ? a.nextLong() : a.nextLong() & 0xff;
                case INT16 -> fs.signed() ? a.nextLong() : a.nextLong() & 0xffff;
                case INT32 -> fs.signed() ? a.nextLong() : a.nextLong() & 0xffff_ffffL;
                case INT64 -> a.nextLong();
                case BYTES -> a.nextBytes();
                case STRING -> a.nextString();
                case RECORD -> fields(a.nextRecord(), fs.fields(), where + " " + fs.name() + "[" + out.size() + "]");
                default -> throw new IllegalStateException(want.toString());
            });
        }
        return out;
    }

    private static Object defaultValue(FieldSchema fs) {
        String d = fs.defaultValue();
        return switch (fs.type()) {
            case "bool" -> Boolean.parseBoolean(d);
            case "string" -> d;
            case "bytes" -> HexFormat.of().parseHex(d);
            case "array" -> List.of();
            default -> fs.signed() ? Long.parseLong(d) : Long.parseUnsignedLong(d);
        };
    }

    /**
     * Evaluates a format version's declarative checks (registry-format.md §3.5) on decoded or staged state.
     *
     * @param version the format version
     * @param state sections by name, fields by name, as {@link #read} returns them
     * @throws StreamFormatException naming the first check that does not hold, with both values
     */
    public static void check(FormatVersion version, Map<String, Map<String, Object>> state) throws StreamFormatException {
        for (StateCheck c : version.checks()) {
            Long left = operand(c.left(), state);
            Long right = operand(c.right(), state);
            if (left == null || right == null) {
                // An operand in an optional section that is absent: the check does not apply.
                continue;
            }
            if (!c.holds(left, right)) {
                throw new StreamFormatException("load-time check " + c.id() + " failed: " + describe(c.left()) + " = " + left + " " + c.op() + " "
                        + describe(c.right()) + " = " + right + (c.description().isEmpty() ? "" : " (" + c.description() + ")"));
            }
        }
    }

    private static String describe(StateCheck.Operand o) {
        return o.kind().equals("value") ? o.path() : o.kind() + "(" + o.path() + ")";
    }

    private static Long operand(StateCheck.Operand o, Map<String, Map<String, Object>> state) throws StreamFormatException {
        if (o.kind().equals("value")) {
            return Long.parseLong(o.path());
        }
        String[] p = o.path().split("\\.", 2);
        Map<String, Object> section = state.get(p[0]);
        if (section == null) {
            return null;
        }
        Object v = section.get(p[1]);
        if (o.kind().equals("count")) {
            if (!(v instanceof List<?> l)) {
                throw new StreamFormatException("check operand count(" + o.path() + ") is not an array in the state");
            }
            return (long) l.size();
        }
        if (!(v instanceof Long n)) {
            throw new StreamFormatException("check operand " + o.path() + " is not an integer in the state");
        }
        return n;
    }
}
