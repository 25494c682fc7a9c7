package dev.outproc.migration.model;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.outproc.migration.integrity.VerifyingKey;
import dev.outproc.migration.internal.CanonicalJson;
import dev.outproc.migration.internal.JsonTree;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.LinkedHashMap;
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
        Set<String> constraintIds = new HashSet<>();
        List<Object> cl = optList(m.get("constraints"), at + ".constraints");
        for (int i = 0; i < cl.size(); i++) {
            String c = at + ".constraints[" + i + "]";
            Map<String, Object> x = obj(cl.get(i), c);
            keys(x, c, Set.of("id", "when", "require", "description"), Set.of("id", "require"));
            String cid = str(x.get("id"), c + ".id");
            String owner = "model " + id + " constraint " + cid;
            Constraint constraint = new Constraint(cid,
                    x.get("when") == null ? null : condition(x.get("when"), params, c + ".when", owner),
                    condition(x.get("require"), params, c + ".require", owner), optStr(x.get("description"), c + ".description"));
            if (!constraintIds.add(constraint.id())) {
                throw new RegistryException(c + ": constraint " + constraint.id() + " appears twice");
            }
            constraints.add(constraint);
        }
        List<FormatClass> classes = new ArrayList<>();
        Set<String> classIds = new HashSet<>();
        List<Object> fl = optList(m.get("formatClasses"), at + ".formatClasses");
        for (int i = 0; i < fl.size(); i++) {
            FormatClass fc = formatClass(fl.get(i), at + ".formatClasses[" + i + "]");
            if (!classIds.add(fc.id())) {
                throw new RegistryException(at + ".formatClasses[" + i + "]: format class " + fc.id() + " appears twice");
            }
            classes.add(fc);
        }
        List<Implementation> impls = new ArrayList<>();
        Set<String> implIds = new HashSet<>();
        List<Object> il = optList(m.get("implementations"), at + ".implementations");
        for (int i = 0; i < il.size(); i++) {
            String a = at + ".implementations[" + i + "]";
            Map<String, Object> x = obj(il.get(i), a);
            keys(x, a, Set.of("id", "vendor", "formatClass", "read", "write", "signers"), Set.of("id", "formatClass", "read", "write"));
            String fc = id(x.get("formatClass"), a + ".formatClass");
            if (classes.stream().noneMatch(f -> f.id().equals(fc))) {
                throw new RegistryException(a + ".formatClass " + fc + " is not a format class of model " + id);
            }
            List<VerifyingKey> signers = new ArrayList<>();
            List<Object> sl = optList(x.get("signers"), a + ".signers");
            for (int k = 0; k < sl.size(); k++) {
                byte[] key = base64(sl.get(k), a + ".signers[" + k + "]");
                if (key.length != VerifyingKey.LENGTH) {
                    throw new RegistryException(a + ".signers[" + k + "] must be a 32-byte Ed25519 key, length=" + key.length);
                }
                signers.add(VerifyingKey.of(key));
            }
            String implId = id(x.get("id"), a + ".id");
            // Lookups by implementation id (the handshake's checks, the signers bound to it) take the first entry:
            // a second entry with the same id would be silently ignored there, and lost in a diff.
            if (!implIds.add(implId)) {
                throw new RegistryException(a + ": implementation " + implId + " appears twice in model " + id);
            }
            impls.add(new Implementation(implId, optStr(x.get("vendor"), a + ".vendor"), fc,
                    versions(x.get("read"), a + ".read"), versions(x.get("write"), a + ".write"), signers));
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

    /** A condition of a constraint (registry-format.md §3.2); {@code owner} names the model and constraint in errors. */
    private static Condition condition(Object o, List<Parameter> params, String at, String owner) throws RegistryException {
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
        if (op != Condition.Op.EQ && op != Condition.Op.NE && !p.type().isInteger()) {
            throw new RegistryException(at + ": " + owner + " applies " + opName + " to parameter " + param + " of type "
                    + p.type().jsonName() + "; le, ge, bits_set and bits_clear apply to integer parameters only");
        }
        if (x.get("otherParam") != null) {
            String other = str(x.get("otherParam"), at + ".otherParam");
            Parameter q = params.stream().filter(r -> r.name().equals(other)).findFirst()
                    .orElseThrow(() -> new RegistryException(at + ".otherParam " + other + " is not a parameter of the model"));
            boolean comparable = p.type().isInteger() ? q.type().isInteger() : p.type() == q.type();
            if (!comparable) {
                throw new RegistryException(at + ": " + owner + " compares parameter " + param + " (" + p.type().jsonName() + ") with "
                        + other + " (" + q.type().jsonName() + "); both must be integers, both bool or both string");
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
            keys(v, a, Set.of("version", "sections", "checks"), Set.of("version", "sections"));
            int version = (int) range(integer(v.get("version"), a + ".version"), 1, Integer.MAX_VALUE, a + ".version");
            if (versions.stream().anyMatch(f -> f.version() == version)) {
                throw new RegistryException(a + ".version " + version + " appears twice");
            }
            List<SectionSchema> sections = new ArrayList<>();
            List<Object> sl = list(v.get("sections"), a + ".sections");
            for (int j = 0; j < sl.size(); j++) {
                String s = a + ".sections[" + j + "]";
                Map<String, Object> y = obj(sl.get(j), s);
                keys(y, s, Set.of("id", "name", "version", "mustUnderstand", "envelope", "optional", "fields"), Set.of("id", "name", "version"));
                SectionSchema section = new SectionSchema((int) range(integer(y.get("id"), s + ".id"), 0, 0xffff_ffffL, s + ".id"),
                        name(y.get("name"), s + ".name"), (int) range(integer(y.get("version"), s + ".version"), 1, 0xffff, s + ".version"),
                        y.get("mustUnderstand") != null && bool(y.get("mustUnderstand"), s + ".mustUnderstand"),
                        y.get("envelope") != null && bool(y.get("envelope"), s + ".envelope"),
                        y.get("optional") != null && bool(y.get("optional"), s + ".optional"),
                        fields(y.get("fields"), s + ".fields", 1));
                for (SectionSchema other : sections) {
                    if (other.id() == section.id() || other.name().equals(section.name())) {
                        throw new RegistryException(s + ": section id " + Integer.toUnsignedString(section.id()) + " or name " + section.name() + " appears twice");
                    }
                }
                sections.add(section);
            }
            List<StateCheck> checks = new ArrayList<>();
            List<Object> cl = optList(v.get("checks"), a + ".checks");
            for (int j = 0; j < cl.size(); j++) {
                checks.add(check(cl.get(j), sections, a + ".checks[" + j + "]"));
            }
            versions.add(new FormatVersion(version, sections, checks));
        }
        return new FormatClass(id(x.get("id"), at + ".id"), optStr(x.get("description"), at + ".description"), versions);
    }

    /** Field type names of the registry (stream-format.md §5.1, lower case). */
    static final List<String> FIELD_TYPES = List.of("bool", "int8", "int16", "int32", "int64", "bytes", "string", "array", "record");
    /** Field and record nesting allowed in a schema: the stream's own limit (stream-format.md §5.2). */
    static final int MAX_SCHEMA_DEPTH = 32;
    private static final Pattern NAME = Pattern.compile("[a-z][a-z0-9_-]{0,63}");
    private static final Pattern HEX_BYTES = Pattern.compile("([0-9a-f]{2})*");

    private static List<FieldSchema> fields(Object o, String at, int depth) throws RegistryException {
        List<FieldSchema> fields = new ArrayList<>();
        List<Object> fl = optList(o, at);
        for (int k = 0; k < fl.size(); k++) {
            String f = at + "[" + k + "]";
            Map<String, Object> z = obj(fl.get(k), f);
            keys(z, f, Set.of("tag", "name", "type", "signed", "element", "fields", "default"), Set.of("tag", "name", "type"));
            String ft = str(z.get("type"), f + ".type");
            if (!FIELD_TYPES.contains(ft)) {
                throw new RegistryException(f + ".type '" + ft + "' is not one of " + FIELD_TYPES);
            }
            String element = null;
            if (ft.equals("array")) {
                element = str(z.get("element"), f + ".element");
                if (!FIELD_TYPES.contains(element) || element.equals("array")) {
                    throw new RegistryException(f + ".element '" + element + "' must be a field type other than array");
                }
            } else if (z.containsKey("element")) {
                throw new RegistryException(f + ".element is only for type array");
            }
            boolean nested = ft.equals("record") || "record".equals(element);
            if (nested != z.containsKey("fields")) {
                throw new RegistryException(f + (nested ? " needs fields (type record or array of record)" : ".fields is only for records"));
            }
            if (nested && depth + 1 > MAX_SCHEMA_DEPTH) {
                throw new RegistryException(f + " nests records deeper than " + MAX_SCHEMA_DEPTH);
            }
            String scalar = element == null ? ft : element;
            boolean integerType = scalar.startsWith("int");
            if (z.containsKey("signed") && !integerType) {
                throw new RegistryException(f + ".signed is only for integer types, type=" + ft);
            }
            boolean signed = z.containsKey("signed") && bool(z.get("signed"), f + ".signed");
            List<FieldSchema> inner = nested ? fields(z.get("fields"), f + ".fields", depth + 1) : List.of();
            String def = z.containsKey("default") ? fieldDefault(z.get("default"), ft, scalar, signed, f + ".default") : null;
            FieldSchema field = new FieldSchema((int) range(integer(z.get("tag"), f + ".tag"), 1, 0xffff, f + ".tag"),
                    name(z.get("name"), f + ".name"), ft, signed, element, inner, def);
            for (FieldSchema other : fields) {
                if (other.tag() == field.tag() || other.name().equals(field.name())) {
                    throw new RegistryException(f + ": tag " + field.tag() + " or name " + field.name() + " appears twice in one field list");
                }
            }
            fields.add(field);
        }
        return fields;
    }

    /** A typed field default, as canonical text (registry-format.md §3.3). */
    private static String fieldDefault(Object o, String type, String scalar, boolean signed, String at) throws RegistryException {
        switch (type) {
            case "bool" -> {
                return Boolean.toString(bool(o, at));
            }
            case "string" -> {
                return str(o, at);
            }
            case "bytes" -> {
                String hex = str(o, at);
                if (!HEX_BYTES.matcher(hex).matches()) {
                    throw new RegistryException(at + " '" + hex + "' must be lower-case hex with an even number of digits");
                }
                return hex;
            }
            case "array" -> {
                if (!list(o, at).isEmpty()) {
                    throw new RegistryException(at + " of an array can only be [] (absent means empty)");
                }
                return "[]";
            }
            case "record" -> throw new RegistryException(at + ": a record has no default; give its fields defaults instead");
            default -> {
                return fieldInteger(o, scalar, signed, at);
            }
        }
    }

    /** An integer of a field type (int8 … int64, signed or unsigned) from a JSON integer or integer text, as decimal. */
    static String fieldInteger(Object o, String type, boolean signed, String at) throws RegistryException {
        String text = o instanceof String s ? s : o instanceof JsonTree.Num n && n.integral() ? n.text() : null;
        if (text == null) {
            throw new RegistryException(at + " must be an integer or integer text");
        }
        int bits = switch (type) {
            case "int8" -> 8;
            case "int16" -> 16;
            case "int32" -> 32;
            default -> 64;
        };
        try {
            long v = IntegerText.parse(text, signed ? ParameterType.INT64 : ParameterType.UINT64);
            boolean fits = signed ? bits == 64 || (v >= -(1L << (bits - 1)) && v < (1L << (bits - 1)))
                    : bits == 64 || (v >= 0 && v < (1L << bits));
            if (!fits) {
                throw new RegistryException(at + " " + text + " does not fit " + (signed ? "signed " : "unsigned ") + type);
            }
            return signed ? Long.toString(v) : Long.toUnsignedString(v);
        } catch (IllegalArgumentException e) {
            throw new RegistryException(at + ": " + e.getMessage());
        }
    }

    private static StateCheck check(Object o, List<SectionSchema> sections, String at) throws RegistryException {
        Map<String, Object> x = obj(o, at);
        keys(x, at, Set.of("id", "left", "op", "right", "description"), Set.of("id", "left", "op", "right"));
        String op = str(x.get("op"), at + ".op");
        if (!Set.of("eq", "ne", "lt", "le", "gt", "ge").contains(op)) {
            throw new RegistryException(at + ".op '" + op + "' is not one of eq, ne, lt, le, gt, ge");
        }
        return new StateCheck(str(x.get("id"), at + ".id"), operand(x.get("left"), sections, at + ".left"), op,
                operand(x.get("right"), sections, at + ".right"), optStr(x.get("description"), at + ".description"));
    }

    private static StateCheck.Operand operand(Object o, List<SectionSchema> sections, String at) throws RegistryException {
        Map<String, Object> x = obj(o, at);
        keys(x, at, Set.of("field", "count", "value"), Set.of());
        if (x.size() != 1) {
            throw new RegistryException(at + " needs exactly one of field, count, value");
        }
        if (x.containsKey("value")) {
            return new StateCheck.Operand("value", fieldInteger(x.get("value"), "int64", true, at + ".value"));
        }
        String kind = x.containsKey("field") ? "field" : "count";
        String path = str(x.get(kind), at + "." + kind);
        String[] parts = path.split("\\.", -1);
        FieldSchema f = parts.length != 2 ? null : sections.stream().filter(s -> s.name().equals(parts[0])).findFirst()
                .flatMap(s -> s.fields().stream().filter(g -> g.name().equals(parts[1])).findFirst()).orElse(null);
        if (f == null) {
            throw new RegistryException(at + "." + kind + " '" + path + "' is not section-name.field-name of this format version");
        }
        if (kind.equals("field") ? !f.type().startsWith("int") : !f.type().equals("array")) {
            throw new RegistryException(at + "." + kind + " '" + path + "' must name " + (kind.equals("field") ? "an integer field" : "an array field")
                    + ", type=" + f.type());
        }
        return new StateCheck.Operand(kind, path);
    }

    private static String name(Object o, String at) throws RegistryException {
        String n = str(o, at);
        if (!NAME.matcher(n).matches()) {
            throw new RegistryException(at + " '" + n + "' must match [a-z][a-z0-9_-]{0,63}");
        }
        return n;
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
            return (int) range(IntegerText.parse(text, ParameterType.UINT64), 0, max, at);
        } catch (IllegalArgumentException e) {
            throw new RegistryException(at + ": " + e.getMessage());
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
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("registryFormat", REGISTRY_FORMAT);
        List<Object> ms = new ArrayList<>();
        for (DeviceModel m : models) {
            ms.add(modelTree(m));
        }
        doc.put("models", ms);
        if (!signatures.isEmpty()) {
            List<Object> ss = new ArrayList<>();
            for (RegistrySignature sig : signatures) {
                Map<String, Object> x = new LinkedHashMap<>();
                x.put("model", sig.modelId());
                x.put("signer", sig.signer());
                x.put("publicKey", sig.key().toBase64());
                x.put("signature", Base64.getEncoder().encodeToString(sig.signature()));
                ss.add(x);
            }
            doc.put("signatures", ss);
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (JsonGenerator g = FACTORY.createGenerator(out)) {
            if (pretty) {
                g.useDefaultPrettyPrinter();
            }
            writeTree(g, doc);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        if (pretty) {
            out.write('\n');
        }
        return out.toByteArray();
    }

    private static void writeTree(JsonGenerator g, Object v) throws IOException {
        switch (v) {
            case Map<?, ?> m -> {
                g.writeStartObject();
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    g.writeFieldName((String) e.getKey());
                    writeTree(g, e.getValue());
                }
                g.writeEndObject();
            }
            case List<?> l -> {
                g.writeStartArray();
                for (Object x : l) {
                    writeTree(g, x);
                }
                g.writeEndArray();
            }
            case String x -> g.writeString(x);
            case Boolean x -> g.writeBoolean(x);
            case Integer x -> g.writeNumber(x);
            case Long x -> g.writeNumber(x);
            default -> throw new IllegalArgumentException(v.getClass().getName());
        }
    }

    /**
     * The canonical form of a model entry (registry-format.md §4): RFC 8785 (JCS) over the entry's normalized tree.
     *
     * @param m the model
     * @return canonical UTF-8 bytes
     */
    static byte[] canonical(DeviceModel m) {
        return CanonicalJson.write(modelTree(m));
    }

    /** A parameter value in the normalized tree: booleans and strings as such, integers as decimal text. */
    private static Object valueTree(ParameterValue v) {
        return switch (v) {
            case ParameterValue.Bool b -> b.value();
            case ParameterValue.Int i -> i.text();
            case ParameterValue.Str x -> x.value();
        };
    }

    /**
     * The normalized tree of a model entry (registry-format.md §4): every key present with its default when the
     * entry leaves it out ({@code ""}, {@code []}, {@code false}, {@code mustMatch: true}), except the keys that have
     * no default ({@code default}, {@code min}, {@code max}, {@code when}, optional PCI ids), which are left out when
     * absent; integer values as canonical decimal text; PCI ids as lower-case {@code 0x} hex.
     */
    static Map<String, Object> modelTree(DeviceModel m) {
        Map<String, Object> t = new LinkedHashMap<>();
        t.put("id", m.id());
        t.put("revision", m.revision());
        t.put("description", m.description());
        List<Object> aliases = new ArrayList<>();
        for (PciAlias a : m.pciAliases()) {
            Map<String, Object> x = new LinkedHashMap<>();
            x.put("vendor", String.format("0x%04x", a.vendor()));
            x.put("device", String.format("0x%04x", a.device()));
            if (a.subsystemVendor() >= 0) {
                x.put("subsystemVendor", String.format("0x%04x", a.subsystemVendor()));
            }
            if (a.subsystemDevice() >= 0) {
                x.put("subsystemDevice", String.format("0x%04x", a.subsystemDevice()));
            }
            if (a.revision() >= 0) {
                x.put("revision", String.format("0x%02x", a.revision()));
            }
            aliases.add(x);
        }
        t.put("pciAliases", aliases);
        List<Object> params = new ArrayList<>();
        for (Parameter p : m.parameters()) {
            Map<String, Object> x = new LinkedHashMap<>();
            x.put("name", p.name());
            x.put("type", p.type().jsonName());
            if (p.defaultValue() != null) {
                x.put("default", valueTree(p.defaultValue()));
            }
            x.put("allowed", p.allowed().stream().map(RegistryCodec::valueTree).toList());
            if (p.min() != null) {
                x.put("min", valueTree(p.min()));
            }
            if (p.max() != null) {
                x.put("max", valueTree(p.max()));
            }
            x.put("mustMatch", p.mustMatch());
            x.put("description", p.description());
            params.add(x);
        }
        t.put("parameters", params);
        List<Object> constraints = new ArrayList<>();
        for (Constraint c : m.constraints()) {
            Map<String, Object> x = new LinkedHashMap<>();
            x.put("id", c.id());
            if (c.when() != null) {
                x.put("when", conditionTree(c.when()));
            }
            x.put("require", conditionTree(c.require()));
            x.put("description", c.description());
            constraints.add(x);
        }
        t.put("constraints", constraints);
        List<Object> classes = new ArrayList<>();
        for (FormatClass f : m.formatClasses()) {
            Map<String, Object> x = new LinkedHashMap<>();
            x.put("id", f.id());
            x.put("description", f.description());
            List<Object> versions = new ArrayList<>();
            for (FormatVersion v : f.versions()) {
                Map<String, Object> y = new LinkedHashMap<>();
                y.put("version", v.version());
                List<Object> sections = new ArrayList<>();
                for (SectionSchema s : v.sections()) {
                    Map<String, Object> z = new LinkedHashMap<>();
                    z.put("id", Integer.toUnsignedLong(s.id()));
                    z.put("name", s.name());
                    z.put("version", s.version());
                    z.put("mustUnderstand", s.mustUnderstand());
                    z.put("envelope", s.envelope());
                    z.put("optional", s.optional());
                    z.put("fields", fieldsTree(s.fields()));
                    sections.add(z);
                }
                y.put("sections", sections);
                List<Object> checks = new ArrayList<>();
                for (StateCheck c : v.checks()) {
                    Map<String, Object> z = new LinkedHashMap<>();
                    z.put("id", c.id());
                    z.put("left", Map.of(c.left().kind(), c.left().path()));
                    z.put("op", c.op());
                    z.put("right", Map.of(c.right().kind(), c.right().path()));
                    z.put("description", c.description());
                    checks.add(z);
                }
                y.put("checks", checks);
                versions.add(y);
            }
            x.put("versions", versions);
            classes.add(x);
        }
        t.put("formatClasses", classes);
        List<Object> impls = new ArrayList<>();
        for (Implementation i : m.implementations()) {
            Map<String, Object> x = new LinkedHashMap<>();
            x.put("id", i.id());
            x.put("vendor", i.vendor());
            x.put("formatClass", i.formatClass());
            x.put("read", i.readVersions());
            x.put("write", i.writeVersions());
            x.put("signers", i.signers().stream().map(VerifyingKey::toBase64).toList());
            impls.add(x);
        }
        t.put("implementations", impls);
        return t;
    }

    private static List<Object> fieldsTree(List<FieldSchema> fields) {
        List<Object> l = new ArrayList<>();
        for (FieldSchema f : fields) {
            Map<String, Object> x = new LinkedHashMap<>();
            x.put("tag", f.tag());
            x.put("name", f.name());
            x.put("type", f.type());
            if (f.element() != null) {
                x.put("element", f.element());
            }
            if (f.isInteger()) {
                x.put("signed", f.signed());
            }
            if (f.type().equals("record") || "record".equals(f.element())) {
                x.put("fields", fieldsTree(f.fields()));
            }
            if (f.defaultValue() != null) {
                x.put("default", switch (f.type()) {
                    case "bool" -> Boolean.parseBoolean(f.defaultValue());
                    case "array" -> List.of();
                    default -> f.defaultValue();
                });
            }
            l.add(x);
        }
        return l;
    }

    private static Map<String, Object> conditionTree(Condition c) {
        Map<String, Object> x = new LinkedHashMap<>();
        x.put("param", c.param());
        x.put("op", c.op().name().toLowerCase(java.util.Locale.ROOT));
        if (c.otherParam() != null) {
            x.put("otherParam", c.otherParam());
        } else {
            x.put("value", valueTree(c.value()));
        }
        return x;
    }
}
