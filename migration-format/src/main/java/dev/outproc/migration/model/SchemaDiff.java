package dev.outproc.migration.model;

import dev.outproc.migration.model.SchemaChange.Severity;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * Compares two versions of a device model's schema and flags breaking changes, in the spirit of QEMU's
 * vmstate-static-checker and {@code buf breaking}: meant to run in CI on every change of a registry file.
 *
 * <p>Rules: removing anything a peer may rely on (parameter, allowed value, PCI alias, format class or version,
 * section, field without default) is breaking; so is changing a type, a default, a must-understand flag, a section's
 * fields without bumping its version, tightening a range, adding a constraint, a required parameter, a field without
 * default or a must-understand section to an existing format version. Additions with defaults, skippable sections
 * and relaxations are compatible.
 */
public final class SchemaDiff {
    private SchemaDiff() {}

    /**
     * Diffs two versions of one model.
     *
     * @param older the older entry
     * @param newer the newer entry
     * @return the changes, breaking first
     */
    public static List<SchemaChange> diff(DeviceModel older, DeviceModel newer) {
        List<SchemaChange> c = new ArrayList<>();
        if (!older.id().equals(newer.id())) {
            c.add(new SchemaChange(Severity.BREAKING, "MODEL_ID_CHANGED", older.id(), "renamed to " + newer.id()));
        }
        boolean same = Arrays.equals(Registry.canonicalBytes(older), Registry.canonicalBytes(newer));
        if (!same && newer.revision() <= older.revision()) {
            c.add(new SchemaChange(Severity.BREAKING, "REVISION_NOT_INCREASED", newer.id(),
                    "content changed but revision went " + older.revision() + " -> " + newer.revision() + "; registries would conflict on merge"));
        }
        for (PciAlias a : older.pciAliases()) {
            if (!newer.pciAliases().contains(a)) {
                c.add(new SchemaChange(Severity.BREAKING, "PCI_ALIAS_REMOVED", a.toString(), "devices with this identity no longer map to the model"));
            }
        }
        for (PciAlias a : newer.pciAliases()) {
            if (!older.pciAliases().contains(a)) {
                c.add(new SchemaChange(Severity.COMPATIBLE, "PCI_ALIAS_ADDED", a.toString(), "new identity"));
            }
        }
        parameters(older, newer, c);
        constraints(older, newer, c);
        formats(older, newer, c);
        implementations(older, newer, c);
        c.sort((x, y) -> x.severity().compareTo(y.severity()));
        return c;
    }

    private static void parameters(DeviceModel older, DeviceModel newer, List<SchemaChange> c) {
        for (Parameter o : older.parameters()) {
            Optional<Parameter> np = newer.parameter(o.name());
            if (np.isEmpty()) {
                c.add(new SchemaChange(Severity.BREAKING, "PARAMETER_REMOVED", o.name(), "descriptors that set it are now refused"));
                continue;
            }
            Parameter n = np.get();
            if (o.type() != n.type()) {
                c.add(new SchemaChange(Severity.BREAKING, "PARAMETER_TYPE_CHANGED", o.name(), o.type().jsonName() + " -> " + n.type().jsonName()));
                continue;
            }
            if (!sameOrBothNull(o.defaultValue(), n.defaultValue())) {
                boolean addedDefault = o.defaultValue() == null;
                c.add(new SchemaChange(addedDefault ? Severity.COMPATIBLE : Severity.BREAKING, addedDefault ? "PARAMETER_DEFAULT_ADDED" : "PARAMETER_DEFAULT_CHANGED",
                        o.name(), text(o.defaultValue()) + " -> " + text(n.defaultValue())
                                + (addedDefault ? "" : "; descriptors that omit it change meaning")));
            }
            if (!n.allowed().isEmpty()) {
                List<ParameterValue> lost = o.allowed().isEmpty() ? List.of()
                        : o.allowed().stream().filter(v -> n.allowed().stream().noneMatch(w -> Parameter.sameValue(v, w))).toList();
                if (o.allowed().isEmpty() || !lost.isEmpty()) {
                    c.add(new SchemaChange(Severity.BREAKING, "ALLOWED_VALUES_NARROWED", o.name(),
                            (o.allowed().isEmpty() ? "any value" : o.allowed().stream().map(ParameterValue::text).toList()) + " -> "
                                    + n.allowed().stream().map(ParameterValue::text).toList()));
                }
            }
            if (!o.allowed().isEmpty() && (n.allowed().isEmpty() || n.allowed().size() > o.allowed().size())
                    && o.allowed().stream().allMatch(v -> n.allowed().isEmpty() || n.allowed().stream().anyMatch(w -> Parameter.sameValue(v, w)))) {
                c.add(new SchemaChange(Severity.COMPATIBLE, "ALLOWED_VALUES_WIDENED", o.name(), "more values allowed"));
            }
            if (tighter(o.min(), n.min(), true) || tighter(o.max(), n.max(), false)) {
                c.add(new SchemaChange(Severity.BREAKING, "RANGE_TIGHTENED", o.name(),
                        "[" + text(o.min()) + ", " + text(o.max()) + "] -> [" + text(n.min()) + ", " + text(n.max()) + "]"));
            }
            if (!o.mustMatch() && n.mustMatch()) {
                c.add(new SchemaChange(Severity.BREAKING, "PARAMETER_NOW_MUST_MATCH", o.name(), "hosts with different values can no longer migrate"));
            }
        }
        for (Parameter n : newer.parameters()) {
            if (older.parameter(n.name()).isEmpty()) {
                boolean hasDefault = n.defaultValue() != null;
                c.add(new SchemaChange(hasDefault ? Severity.COMPATIBLE : Severity.BREAKING, hasDefault ? "PARAMETER_ADDED" : "REQUIRED_PARAMETER_ADDED",
                        n.name(), hasDefault ? "default " + n.defaultValue().text() : "no default: existing descriptors are now incomplete"));
            }
        }
    }

    private static boolean tighter(ParameterValue.Int o, ParameterValue.Int n, boolean isMin) {
        if (n == null) {
            return false;
        }
        if (o == null) {
            return true;
        }
        int cmp = n.compareTo(o);
        return isMin ? cmp > 0 : cmp < 0;
    }

    private static void constraints(DeviceModel older, DeviceModel newer, List<SchemaChange> c) {
        Map<String, Constraint> old = new HashMap<>();
        older.constraints().forEach(k -> old.put(k.id(), k));
        for (Constraint n : newer.constraints()) {
            Constraint o = old.remove(n.id());
            if (o == null) {
                c.add(new SchemaChange(Severity.BREAKING, "CONSTRAINT_ADDED", n.id(), n + "; configurations accepted before may be refused"));
            } else if (!o.toString().equals(n.toString())) {
                c.add(new SchemaChange(Severity.BREAKING, "CONSTRAINT_CHANGED", n.id(), o + " -> " + n));
            }
        }
        for (Constraint o : old.values()) {
            c.add(new SchemaChange(Severity.COMPATIBLE, "CONSTRAINT_REMOVED", o.id(), o.toString()));
        }
    }

    private static void formats(DeviceModel older, DeviceModel newer, List<SchemaChange> c) {
        for (FormatClass of : older.formatClasses()) {
            Optional<FormatClass> nf = newer.formatClass(of.id());
            if (nf.isEmpty()) {
                c.add(new SchemaChange(Severity.BREAKING, "FORMAT_CLASS_REMOVED", of.id(), "implementations of it can no longer migrate"));
                continue;
            }
            for (FormatVersion ov : of.versions()) {
                Optional<FormatVersion> nv = nf.get().version(ov.version());
                if (nv.isEmpty()) {
                    c.add(new SchemaChange(Severity.BREAKING, "FORMAT_VERSION_REMOVED", of.id() + " v" + ov.version(), "streams of this version can no longer be described"));
                    continue;
                }
                sections(of.id() + " v" + ov.version(), ov, nv.get(), c);
            }
            for (FormatVersion nv : nf.get().versions()) {
                if (of.version(nv.version()).isEmpty()) {
                    c.add(new SchemaChange(Severity.COMPATIBLE, "FORMAT_VERSION_ADDED", of.id() + " v" + nv.version(), nv.sections().size() + " sections"));
                }
            }
        }
        for (FormatClass nf : newer.formatClasses()) {
            if (older.formatClass(nf.id()).isEmpty()) {
                c.add(new SchemaChange(Severity.COMPATIBLE, "FORMAT_CLASS_ADDED", nf.id(), "new format class"));
            }
            // Inside one model version: a section id and version must mean the same fields in every format version.
            Map<String, SectionSchema> seen = new HashMap<>();
            for (FormatVersion v : nf.versions()) {
                for (SectionSchema s : v.sections()) {
                    SectionSchema prev = seen.putIfAbsent(s.id() + "/" + s.version(), s);
                    if (prev != null && !fieldsCompatible(prev, s)) {
                        c.add(new SchemaChange(Severity.BREAKING, "SECTION_CHANGED_WITHOUT_VERSION", nf.id() + " section " + s.name(),
                                "section " + s.id() + " version " + s.version() + " changes or drops a field without default in format version "
                                        + v.version() + "; bump the section version"));
                    }
                }
            }
        }
    }

    /** Within one section version, fields may come and go only if they have defaults, and never change type. */
    private static boolean fieldsCompatible(SectionSchema a, SectionSchema b) {
        for (FieldSchema f : a.fields()) {
            Optional<FieldSchema> g = b.fields().stream().filter(x -> x.tag() == f.tag()).findFirst();
            if (g.isPresent() ? !g.get().shape().equals(f.shape()) : f.defaultValue() == null) {
                return false;
            }
        }
        for (FieldSchema g : b.fields()) {
            if (a.fields().stream().noneMatch(x -> x.tag() == g.tag()) && g.defaultValue() == null) {
                return false;
            }
        }
        return true;
    }

    private static void sections(String where, FormatVersion ov, FormatVersion nv, List<SchemaChange> c) {
        for (SectionSchema os : ov.sections()) {
            Optional<SectionSchema> ns = nv.sections().stream().filter(s -> s.id() == os.id()).findFirst();
            String subject = where + " section " + os.name();
            if (ns.isEmpty()) {
                c.add(new SchemaChange(os.mustUnderstand() ? Severity.BREAKING : Severity.COMPATIBLE, "SECTION_REMOVED", subject,
                        os.mustUnderstand() ? "readers of this version require it" : "skippable section"));
                continue;
            }
            SectionSchema n = ns.get();
            if (os.version() != n.version()) {
                c.add(new SchemaChange(Severity.BREAKING, "SECTION_VERSION_CHANGED", subject, os.version() + " -> " + n.version() + " inside one format version"));
            }
            if (os.mustUnderstand() != n.mustUnderstand() || os.envelope() != n.envelope()) {
                c.add(new SchemaChange(Severity.BREAKING, "SECTION_FLAGS_CHANGED", subject, "mustUnderstand " + os.mustUnderstand() + " -> " + n.mustUnderstand()
                        + ", envelope " + os.envelope() + " -> " + n.envelope()));
            }
            for (FieldSchema of : os.fields()) {
                Optional<FieldSchema> nf = n.fields().stream().filter(f -> f.tag() == of.tag()).findFirst();
                if (nf.isEmpty()) {
                    c.add(new SchemaChange(of.defaultValue() == null ? Severity.BREAKING : Severity.COMPATIBLE, "FIELD_REMOVED",
                            subject + " field " + of.name(), "tag " + of.tag() + (of.defaultValue() == null ? " has no default" : " has default " + of.defaultValue())));
                } else if (!of.shape().equals(nf.get().shape())) {
                    c.add(new SchemaChange(Severity.BREAKING, "FIELD_TYPE_CHANGED", subject + " field " + of.name(), "tag " + of.tag() + ": " + of.shape() + " -> " + nf.get().shape()));
                } else if (!Objects.equals(of.defaultValue(), nf.get().defaultValue())) {
                    c.add(new SchemaChange(Severity.BREAKING, "FIELD_DEFAULT_CHANGED", subject + " field " + of.name(), of.defaultValue() + " -> " + nf.get().defaultValue()));
                } else if (!of.name().equals(nf.get().name())) {
                    c.add(new SchemaChange(Severity.INFO, "FIELD_RENAMED", subject + " field " + of.name(), "tag " + of.tag() + " is now " + nf.get().name()));
                }
            }
            for (FieldSchema nf : n.fields()) {
                if (os.fields().stream().noneMatch(f -> f.tag() == nf.tag())) {
                    c.add(new SchemaChange(nf.defaultValue() == null ? Severity.BREAKING : Severity.COMPATIBLE, "FIELD_ADDED", subject + " field " + nf.name(),
                            "tag " + nf.tag() + (nf.defaultValue() == null ? " without default: streams written before lack it" : " default " + nf.defaultValue())));
                }
            }
        }
        for (SectionSchema ns : nv.sections()) {
            if (ov.sections().stream().noneMatch(s -> s.id() == ns.id())) {
                c.add(new SchemaChange(ns.mustUnderstand() ? Severity.BREAKING : Severity.COMPATIBLE, "SECTION_ADDED", where + " section " + ns.name(),
                        ns.mustUnderstand() ? "must-understand section added to an existing format version: its readers refuse it" : "skippable"));
            }
        }
    }

    private static void implementations(DeviceModel older, DeviceModel newer, List<SchemaChange> c) {
        for (Implementation o : older.implementations()) {
            Optional<Implementation> n = newer.implementation(o.id());
            if (n.isEmpty()) {
                c.add(new SchemaChange(Severity.INFO, "IMPLEMENTATION_REMOVED", o.id(), "no longer listed"));
                continue;
            }
            for (int v : o.readVersions()) {
                if (!n.get().readVersions().contains(v)) {
                    c.add(new SchemaChange(Severity.BREAKING, "READ_VERSION_DROPPED", o.id(), "no longer reads format version " + v));
                }
            }
            for (int v : o.writeVersions()) {
                if (!n.get().writeVersions().contains(v)) {
                    c.add(new SchemaChange(Severity.BREAKING, "WRITE_VERSION_DROPPED", o.id(), "no longer writes format version " + v + " (no downgrade to it)"));
                }
            }
        }
    }

    private static boolean sameOrBothNull(ParameterValue a, ParameterValue b) {
        return a == null ? b == null : b != null && Parameter.sameValue(a, b);
    }

    private static String text(ParameterValue v) {
        return v == null ? "none" : v.text();
    }
}
