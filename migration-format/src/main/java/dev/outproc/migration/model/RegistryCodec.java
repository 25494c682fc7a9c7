package dev.outproc.migration.model;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.outproc.migration.integrity.VerifyingKey;
import dev.outproc.migration.internal.JsonTree;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/** JSON mapping of registry files (schema: {@code migration-format/docs/registry-format.md}). */
final class RegistryCodec {
    static final int REGISTRY_FORMAT = 1;
    /** Domain-rooted id: a DNS name, then path segments. */
    static final Pattern ID = Pattern.compile("[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+(/[A-Za-z0-9._-]+)+");
    static final int MAX_MODELS = 10_000;

    private static final JsonFactory FACTORY = new JsonFactory();

    private RegistryCodec() {}

    record Parsed(List<DeviceModel> models, List<RegistrySignature> signatures) {}

    // ---------------- decoding ----------------

    static Parsed decode(byte[] json) throws RegistryException {
        Object root;
        try {
            root = JsonTree.parse(json);
        } catch (JsonTree.JsonException e) {
            throw new RegistryException(e.getMessage(), e);
        }
        Map<String, Object> top = obj(root, "$");
        keys(top, "$", Set.of("registryFormat", "models", "signatures"), Set.of("registryFormat", "models"));
        long fmt = integer(top.get("registryFormat"), "$.registryFormat");
        if (fmt != REGISTRY_FORMAT) {
            throw new RegistryException("$.registryFormat is " + fmt + ", this reader supports " + REGISTRY_FORMAT);
        }
        List<Object> ms = list(top.get("models"), "$.models");
        if (ms.size() > MAX_MODELS) {
            throw new RegistryException("$.models has " + ms.size() + " entries, more than " + MAX_MODELS);
        }
        List<DeviceModel> models = new ArrayList<>();
        Set<String> ids = new HashSet<>();
        for (int i = 0; i < ms.size(); i++) {
            DeviceModel m = model(ms.get(i), "$.models[" + i + "]");
            if (!ids.add(m.id())) {
                throw new RegistryException("$.models[" + i + "]: model " + m.id() + " appears twice");
            }
            models.add(m);
        }
        List<RegistrySignature> sigs = new ArrayList<>();
        List<Object> ss = top.containsKey("signatures") ? list(top.get("signatures"), "$.signatures") : List.of();
        for (int i = 0; i < ss.size(); i++) {
            String at = "$.signatures[" + i + "]";
            Map<String, Object> s = obj(ss.get(i), at);
            keys(s, at, Set.of("model", "signer", "publicKey", "signature"), Set.of("model", "signer", "publicKey", "signature"));
            byte[] pk = base64(s.get("publicKey"), at + ".publicKey");
            byte[] sig = base64(s.get("signature"), at + ".signature");
            if (pk.length != VerifyingKey.LENGTH || sig.length != VerifyingKey.SIGNATURE_LENGTH) {
                throw new RegistryException(at + ": public key must be 32 bytes and signature 64, got " + pk.length + " and " + sig.length);
            }
            sigs.add(new RegistrySignature(str(s.get("model"), at + ".model"), str(s.get("signer"), at + ".signer"), VerifyingKey.of(pk), sig));
        }
        return new Parsed(models, sigs);
    }

    private static DeviceModel model(Object o, String at) throws RegistryException {
        Map<String, Object> m = obj(o, at);
        keys(m, at, Set.of("id", "revision", "description", "pciAliases", "parameters", "constraints", "formatClasses", "implementations"),
                Set.of("id", "revision"));
        String id = id(m.get("id"), at + ".id");
        int revision = (int) range(integer(m.get("revision"), at + ".revision"), 1, Integer.MAX_VALUE, at + ".revision");
        String description = optStr(m.get("description"), at + ".description");
        List<PciAlias> aliases = new ArrayList<>();
        List<Object> al = optList(m.get("pciAliases"), at + ".pciAliases");
        for (int i = 0; i < al.size(); i++) {
            String a = at + ".pciAliases[" + i + "]";
            Map<String, Object> x = obj(al.get(i), a);
            keys(x, a, Set.of("vendor", "device", "subsystemVendor", "subsystemDevice", "revision"), Set.of("vendor", "device"));
            aliases.add(new PciAlias(pciId(x.get("vendor"), a + ".vendor", 0xffff), pciId(x.get("device"), a + ".device", 0xffff),
                    optPciId(x.get("subsystemVendor"), a + ".subsystemVendor", 0xffff),
                    optPciId(x.get("subsystemDevice"), a + ".subsystemDevice", 0xffff),
                    optPciId(x.get("revision"), a + ".revision", 0xff)));
        }
        List<Parameter> params = new ArrayList<>();
        List<Object> pl = optList(m.get("parameters"), at + ".parameters");
        Set<String> names = new HashSet<>();
        for (int i = 0; i < pl.size(); i++) {
            Parameter p = parameter(pl.get(i), at + ".parameters[" + i + "]");
            if (!names.add(p.name())) {
                throw new RegistryException(at + ".parameters[" + i + "]: parameter " + p.name() + " appears twice");
            }
            params.add(p);
        }
        List<Constraint> constraints = new ArrayList<>();
        List<Object> cl = optList(m.get("constraints"), at + ".constraints");
        for (int i = 0; i < cl.size(); i++) {
            String c = at + ".constraints[" + i + "]";
            Map<String, Object> x = obj(cl.get(i), c);
            keys(x, c, Set.of("id", "when", "require", "description"), Set.of("id", "require"));
            constraints.add(new Constraint(str(x.get("id"), c + ".id"),
                    x.get("when") == null ? null : condition(x.get("when"), params, c + ".when"),
                    condition(x.get("require"), params, c + ".require"), optStr(x.get("description"), c + ".description")));
        }
        List<FormatClass> classes = new ArrayList<>();
        List<Object> fl = optList(m.get("formatClasses"), at + ".formatClasses");
        for (int i = 0; i < fl.size(); i++) {
            classes.add(formatClass(fl.get(i), at + ".formatClasses[" + i + "]"));
        }
        List<Implementation> impls = new ArrayList<>();
        List<Object> il = optList(m.get("implementations"), at + ".implementations");
        for (int i = 0; i < il.size(); i++) {
            String a = at + ".implementations[" + i + "]";
            Map<String, Object> x = obj(il.get(i), a);
            keys(x, a, Set.of("id", "vendor", "formatClass", "read", "write"), Set.of("id", "formatClass", "read", "write"));
            String fc = id(x.get("formatClass"), a + ".formatClass");
            if (classes.stream().noneMatch(f -> f.id().equals(fc))) {
                throw new RegistryException(a + ".formatClass " + fc + " is not a format class of model " + id);
            }
            impls.add(new Implementation(id(x.get("id"), a + ".id"), optStr(x.get("vendor"), a + ".vendor"), fc,
                    versions(x.get("read"), a + ".read"), versions(x.get("write"), a + ".write")));
        }
        return new DeviceModel(id, revision, description, aliases, params, constraints, classes, impls);
    }

    private static Parameter parameter(Object o, String at) throws RegistryException {
        Map<String, Object> x = obj(o, at);
        keys(x, at, Set.of("name", "type", "default", "allowed", "min", "max", "mustMatch", "description"), Set.of("name", "type"));
        String name = str(x.get("name"), at + ".name");
        if (!name.matches("[a-z][a-z0-9_]{0,63}")) {
            throw new RegistryException(at + ".name '" + name + "' must match [a-z][a-z0-9_]{0,63}");
        }
        String typeName = str(x.get("type"), at + ".type");
        ParameterType type = ParameterType.ofJson(typeName);
        if (type == null) {
            throw new RegistryException(at + ".type '" + typeName + "' is not one of bool, uint8, uint16, uint32, uint64, int64, string");
        }
        ParameterValue def = x.get("default") == null ? null : value(x.get("default"), type, at + ".default");
        List<ParameterValue> allowed = new ArrayList<>();
        for (Object a : optList(x.get("allowed"), at + ".allowed")) {
            allowed.add(value(a, type, at + ".allowed"));
        }
        ParameterValue.Int min = null;
        ParameterValue.Int max = null;
        if (x.get("min") != null || x.get("max") != null) {
            if (!type.isInteger()) {
                throw new RegistryException(at + ": min/max need an integer type, type=" + typeName);
            }
            min = x.get("min") == null ? null : (ParameterValue.Int) value(x.get("min"), type, at + ".min");
            max = x.get("max") == null ? null : (ParameterValue.Int) value(x.get("max"), type, at + ".max");
        }
        boolean mustMatch = x.get("mustMatch") == null || bool(x.get("mustMatch"), at + ".mustMatch");
        Parameter p = new Parameter(name, type, def, allowed, min, max, mustMatch, optStr(x.get("description"), at + ".description"));
        if (def != null && !p.check(def).isEmpty()) {
            throw new RegistryException(at + ".default is not allowed by the parameter itself: " + p.check(def));
        }
        return p;
    }

    private static Condition condition(Object o, List<Parameter> params, String at) throws RegistryException {
        Map<String, Object> x = obj(o, at);
        keys(x, at, Set.of("param", "op", "value", "otherParam"), Set.of("param", "op"));
        String param = str(x.get("param"), at + ".param");
        Parameter p = params.stream().filter(q -> q.name().equals(param)).findFirst()
                .orElseThrow(() -> new RegistryException(at + ".param " + param + " is not a parameter of the model"));
        String opName = str(x.get("op"), at + ".op");
        Condition.Op op;
        try {
            op = Condition.Op.valueOf(opName.toUpperCase(java.util.Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new RegistryException(at + ".op '" + opName + "' is not one of eq, ne, le, ge, bits_set, bits_clear");
        }
        if ((x.get("value") == null) == (x.get("otherParam") == null)) {
            throw new RegistryException(at + " needs exactly one of value and otherParam");
        }
        if (x.get("otherParam") != null) {
            String other = str(x.get("otherParam"), at + ".otherParam");
            if (params.stream().noneMatch(q -> q.name().equals(other))) {
                throw new RegistryException(at + ".otherParam " + other + " is not a parameter of the model");
            }
            return new Condition(param, op, null, other);
        }
        return new Condition(param, op, value(x.get("value"), p.type(), at + ".value"), null);
    }

    private static FormatClass formatClass(Object o, String at) throws RegistryException {
        Map<String, Object> x = obj(o, at);
        keys(x, at, Set.of("id", "description", "versions"), Set.of("id", "versions"));
        List<FormatVersion> versions = new ArrayList<>();
        List<Object> vl = list(x.get("versions"), at + ".versions");
        for (int i = 0; i < vl.size(); i++) {
            String a = at + ".versions[" + i + "]";
            Map<String, Object> v = obj(vl.get(i), a);
            keys(v, a, Set.of("version", "sections"), Set.of("version", "sections"));
            int version = (int) range(integer(v.get("version"), a + ".version"), 1, Integer.MAX_VALUE, a + ".version");
            if (versions.stream().anyMatch(f -> f.version() == version)) {
                throw new RegistryException(a + ".version " + version + " appears twice");
            }
            List<SectionSchema> sections = new ArrayList<>();
            List<Object> sl = list(v.get("sections"), a + ".sections");
            for (int j = 0; j < sl.size(); j++) {
                String s = a + ".sections[" + j + "]";
                Map<String, Object> y = obj(sl.get(j), s);
                keys(y, s, Set.of("id", "name", "version", "mustUnderstand", "envelope", "fields"), Set.of("id", "name", "version"));
                List<FieldSchema> fields = new ArrayList<>();
                List<Object> fl = optList(y.get("fields"), s + ".fields");
                for (int k = 0; k < fl.size(); k++) {
                    String f = s + ".fields[" + k + "]";
                    Map<String, Object> z = obj(fl.get(k), f);
                    keys(z, f, Set.of("tag", "name", "type", "default"), Set.of("tag", "name", "type"));
                    String ft = str(z.get("type"), f + ".type");
                    if (!Set.of("bool", "int8", "int16", "int32", "int64", "bytes", "string", "array", "record").contains(ft)) {
                        throw new RegistryException(f + ".type '" + ft + "' is not a field type");
                    }
                    fields.add(new FieldSchema((int) range(integer(z.get("tag"), f + ".tag"), 1, 0xffff, f + ".tag"),
                            str(z.get("name"), f + ".name"), ft, z.get("default") == null ? null : scalarText(z.get("default"), f + ".default")));
                }
                SectionSchema section = new SectionSchema((int) range(integer(y.get("id"), s + ".id"), 0, 0xffff_ffffL, s + ".id"),
                        str(y.get("name"), s + ".name"), (int) range(integer(y.get("version"), s + ".version"), 1, 0xffff, s + ".version"),
                        y.get("mustUnderstand") != null && bool(y.get("mustUnderstand"), s + ".mustUnderstand"),
                        y.get("envelope") != null && bool(y.get("envelope"), s + ".envelope"), fields);
                // A stream section names its schema by id: two schemas of one id would make it ambiguous.
                if (sections.stream().anyMatch(other -> other.id() == section.id())) {
                    throw new RegistryException(s + ".id " + Integer.toUnsignedString(section.id()) + " appears twice in " + a);
                }
                sections.add(section);
            }
            versions.add(new FormatVersion(version, sections));
        }
        return new FormatClass(id(x.get("id"), at + ".id"), optStr(x.get("description"), at + ".description"), versions);
    }

    // ---------------- helpers ----------------

    @SuppressWarnings("unchecked")
    private static Map<String, Object> obj(Object o, String at) throws RegistryException {
        if (o instanceof Map<?, ?> m) {
            return (Map<String, Object>) m;
        }
        throw new RegistryException(at + " must be an object");
    }

    @SuppressWarnings("unchecked")
    private static List<Object> list(Object o, String at) throws RegistryException {
        if (o instanceof List<?> l) {
            return (List<Object>) l;
        }
        throw new RegistryException(at + " must be an array");
    }

    private static List<Object> optList(Object o, String at) throws RegistryException {
        return o == null ? List.of() : list(o, at);
    }

    private static void keys(Map<String, Object> m, String at, Set<String> allowed, Set<String> required) throws RegistryException {
        for (String k : m.keySet()) {
            if (!allowed.contains(k)) {
                throw new RegistryException(at + ": unknown key '" + k + "' (allowed: " + new java.util.TreeSet<>(allowed) + ")");
            }
        }
        for (String k : required) {
            if (m.get(k) == null) {
                throw new RegistryException(at + ": missing key '" + k + "'");
            }
        }
    }

    private static String str(Object o, String at) throws RegistryException {
        if (o instanceof String s) {
            return s;
        }
        throw new RegistryException(at + " must be a string");
    }

    private static String optStr(Object o, String at) throws RegistryException {
        return o == null ? "" : str(o, at);
    }

    private static String id(Object o, String at) throws RegistryException {
        String s = str(o, at);
        if (s.length() > 256 || !ID.matcher(s).matches()) {
            throw new RegistryException(at + " '" + s + "' is not a domain-rooted id such as virtio-spec.org/pci/virtio-blk");
        }
        return s;
    }

    private static boolean bool(Object o, String at) throws RegistryException {
        if (o instanceof Boolean b) {
            return b;
        }
        throw new RegistryException(at + " must be true or false");
    }

    private static long integer(Object o, String at) throws RegistryException {
        if (o instanceof JsonTree.Num n && n.integral()) {
            try {
                return Long.parseLong(n.text());
            } catch (NumberFormatException e) {
                throw new RegistryException(at + " " + n.text() + " does not fit 64 bits");
            }
        }
        throw new RegistryException(at + " must be an integer");
    }

    private static long range(long v, long min, long max, String at) throws RegistryException {
        if (v < min || v > max) {
            throw new RegistryException(at + " " + v + " outside " + min + ".." + max);
        }
        return v;
    }

    private static byte[] base64(Object o, String at) throws RegistryException {
        try {
            return Base64.getDecoder().decode(str(o, at));
        } catch (IllegalArgumentException e) {
            throw new RegistryException(at + " is not base64");
        }
    }

    private static int pciId(Object o, String at, int max) throws RegistryException {
        String text = o instanceof String s ? s : o instanceof JsonTree.Num n && n.integral() ? n.text() : null;
        if (text == null) {
            throw new RegistryException(at + " must be a hex string like \"0x1af4\" or an integer");
        }
        try {
            long v = text.startsWith("0x") ? Long.parseLong(text.substring(2), 16) : Long.parseLong(text);
            return (int) range(v, 0, max, at);
        } catch (NumberFormatException e) {
            throw new RegistryException(at + " '" + text + "' is not a number");
        }
    }

    private static int optPciId(Object o, String at, int max) throws RegistryException {
        return o == null ? -1 : pciId(o, at, max);
    }

    private static List<Integer> versions(Object o, String at) throws RegistryException {
        List<Integer> v = new ArrayList<>();
        for (Object x : list(o, at)) {
            v.add((int) range(integer(x, at), 1, Integer.MAX_VALUE, at));
        }
        return v;
    }

    private static String scalarText(Object o, String at) throws RegistryException {
        if (o instanceof String s) {
            return s;
        }
        if (o instanceof Boolean b) {
            return b.toString();
        }
        if (o instanceof JsonTree.Num n && n.integral()) {
            return n.text();
        }
        throw new RegistryException(at + " must be a string, boolean or integer");
    }

    static ParameterValue value(Object o, ParameterType type, String at) throws RegistryException {
        try {
            if (type == ParameterType.STRING && !(o instanceof String)) {
                throw new IllegalArgumentException("must be a string");
            }
            if (type == ParameterType.BOOL && !(o instanceof Boolean)) {
                throw new IllegalArgumentException("must be true or false");
            }
            return ParameterValue.parse(type, scalarText(o, at));
        } catch (IllegalArgumentException e) {
            throw new RegistryException(at + ": " + e.getMessage());
        }
    }

    // ---------------- encoding ----------------

    static byte[] encode(List<DeviceModel> models, List<RegistrySignature> signatures, boolean pretty) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (JsonGenerator g = FACTORY.createGenerator(out)) {
            if (pretty) {
                g.useDefaultPrettyPrinter();
            }
            g.writeStartObject();
            g.writeNumberField("registryFormat", REGISTRY_FORMAT);
            g.writeArrayFieldStart("models");
            for (DeviceModel m : models) {
                writeModel(g, m);
            }
            g.writeEndArray();
            if (!signatures.isEmpty()) {
                g.writeArrayFieldStart("signatures");
                for (RegistrySignature s : signatures) {
                    g.writeStartObject();
                    g.writeStringField("model", s.modelId());
                    g.writeStringField("signer", s.signer());
                    g.writeStringField("publicKey", s.key().toBase64());
                    g.writeStringField("signature", Base64.getEncoder().encodeToString(s.signature()));
                    g.writeEndObject();
                }
                g.writeEndArray();
            }
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        if (pretty) {
            out.write('\n');
        }
        return out.toByteArray();
    }

    static byte[] canonical(DeviceModel m) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (JsonGenerator g = FACTORY.createGenerator(out)) {
            writeModel(g, m);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    private static void writeValue(JsonGenerator g, ParameterValue v) throws IOException {
        switch (v) {
            case ParameterValue.Bool b -> g.writeBoolean(b.value());
            case ParameterValue.Int i -> g.writeNumber(i.text());
            case ParameterValue.Str s -> g.writeString(s.value());
        }
    }

    private static void writeModel(JsonGenerator g, DeviceModel m) throws IOException {
        g.writeStartObject();
        g.writeStringField("id", m.id());
        g.writeNumberField("revision", m.revision());
        g.writeStringField("description", m.description());
        g.writeArrayFieldStart("pciAliases");
        for (PciAlias a : m.pciAliases()) {
            g.writeStartObject();
            g.writeStringField("vendor", String.format("0x%04x", a.vendor()));
            g.writeStringField("device", String.format("0x%04x", a.device()));
            if (a.subsystemVendor() >= 0) {
                g.writeStringField("subsystemVendor", String.format("0x%04x", a.subsystemVendor()));
            }
            if (a.subsystemDevice() >= 0) {
                g.writeStringField("subsystemDevice", String.format("0x%04x", a.subsystemDevice()));
            }
            if (a.revision() >= 0) {
                g.writeStringField("revision", String.format("0x%02x", a.revision()));
            }
            g.writeEndObject();
        }
        g.writeEndArray();
        g.writeArrayFieldStart("parameters");
        for (Parameter p : m.parameters()) {
            g.writeStartObject();
            g.writeStringField("name", p.name());
            g.writeStringField("type", p.type().jsonName());
            if (p.defaultValue() != null) {
                g.writeFieldName("default");
                writeValue(g, p.defaultValue());
            }
            if (!p.allowed().isEmpty()) {
                g.writeArrayFieldStart("allowed");
                for (ParameterValue v : p.allowed()) {
                    writeValue(g, v);
                }
                g.writeEndArray();
            }
            if (p.min() != null) {
                g.writeFieldName("min");
                writeValue(g, p.min());
            }
            if (p.max() != null) {
                g.writeFieldName("max");
                writeValue(g, p.max());
            }
            g.writeBooleanField("mustMatch", p.mustMatch());
            g.writeStringField("description", p.description());
            g.writeEndObject();
        }
        g.writeEndArray();
        g.writeArrayFieldStart("constraints");
        for (Constraint c : m.constraints()) {
            g.writeStartObject();
            g.writeStringField("id", c.id());
            if (c.when() != null) {
                g.writeFieldName("when");
                writeCondition(g, c.when());
            }
            g.writeFieldName("require");
            writeCondition(g, c.require());
            g.writeStringField("description", c.description());
            g.writeEndObject();
        }
        g.writeEndArray();
        g.writeArrayFieldStart("formatClasses");
        for (FormatClass f : m.formatClasses()) {
            g.writeStartObject();
            g.writeStringField("id", f.id());
            g.writeStringField("description", f.description());
            g.writeArrayFieldStart("versions");
            for (FormatVersion v : f.versions()) {
                g.writeStartObject();
                g.writeNumberField("version", v.version());
                g.writeArrayFieldStart("sections");
                for (SectionSchema s : v.sections()) {
                    g.writeStartObject();
                    g.writeNumberField("id", Integer.toUnsignedLong(s.id()));
                    g.writeStringField("name", s.name());
                    g.writeNumberField("version", s.version());
                    g.writeBooleanField("mustUnderstand", s.mustUnderstand());
                    g.writeBooleanField("envelope", s.envelope());
                    g.writeArrayFieldStart("fields");
                    for (FieldSchema fs : s.fields()) {
                        g.writeStartObject();
                        g.writeNumberField("tag", fs.tag());
                        g.writeStringField("name", fs.name());
                        g.writeStringField("type", fs.type());
                        if (fs.defaultValue() != null) {
                            g.writeStringField("default", fs.defaultValue());
                        }
                        g.writeEndObject();
                    }
                    g.writeEndArray();
                    g.writeEndObject();
                }
                g.writeEndArray();
                g.writeEndObject();
            }
            g.writeEndArray();
            g.writeEndObject();
        }
        g.writeEndArray();
        g.writeArrayFieldStart("implementations");
        for (Implementation i : m.implementations()) {
            g.writeStartObject();
            g.writeStringField("id", i.id());
            g.writeStringField("vendor", i.vendor());
            g.writeStringField("formatClass", i.formatClass());
            g.writeArrayFieldStart("read");
            for (int v : i.readVersions()) {
                g.writeNumber(v);
            }
            g.writeEndArray();
            g.writeArrayFieldStart("write");
            for (int v : i.writeVersions()) {
                g.writeNumber(v);
            }
            g.writeEndArray();
            g.writeEndObject();
        }
        g.writeEndArray();
        g.writeEndObject();
    }

    private static void writeCondition(JsonGenerator g, Condition c) throws IOException {
        g.writeStartObject();
        g.writeStringField("param", c.param());
        g.writeStringField("op", c.op().name().toLowerCase(java.util.Locale.ROOT));
        if (c.otherParam() != null) {
            g.writeStringField("otherParam", c.otherParam());
        } else {
            g.writeFieldName("value");
            writeValue(g, c.value());
        }
        g.writeEndObject();
    }
}
