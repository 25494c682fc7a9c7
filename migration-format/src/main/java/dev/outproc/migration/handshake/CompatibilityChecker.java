package dev.outproc.migration.handshake;

import dev.outproc.migration.integrity.VerifyingKey;
import dev.outproc.migration.model.Constraint;
import dev.outproc.migration.model.DeviceModel;
import dev.outproc.migration.model.FormatClass;
import dev.outproc.migration.model.FormatVersion;
import dev.outproc.migration.model.Implementation;
import dev.outproc.migration.model.Parameter;
import dev.outproc.migration.model.ParameterValue;
import dev.outproc.migration.model.Registry;
import dev.outproc.migration.model.SignatureCheck;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * Decides, before any state moves, whether a source can migrate to a destination, and says why not in structured
 * reasons. The destination runs it on the offer during the handshake; management software and CI run the same
 * check offline on two descriptors ({@code migration check}).
 *
 * {@snippet :
 * CompatibilityReport report = new CompatibilityChecker(Registry.builtin()).check(source, destination);
 * report.reasons().forEach(System.out::println);
 * }
 */
public final class CompatibilityChecker {
    private final Registry registry;
    private final Set<VerifyingKey> trustedModelSigners;
    private final boolean requireTrustedModel;

    /**
     * Creates a checker that does not require signed models (an invalid signature is still refused).
     *
     * @param registry models known to the checking side
     */
    public CompatibilityChecker(Registry registry) {
        this(registry, Set.of(), false);
    }

    /**
     * Creates a checker.
     *
     * @param registry models known to the checking side
     * @param trustedModelSigners keys whose signature on a model entry is trusted
     * @param requireTrustedModel whether a model must carry a trusted signature
     */
    public CompatibilityChecker(Registry registry, Set<VerifyingKey> trustedModelSigners, boolean requireTrustedModel) {
        this.registry = registry;
        this.trustedModelSigners = Set.copyOf(trustedModelSigners);
        this.requireTrustedModel = requireTrustedModel;
    }

    /** @return the registry the checker uses */
    public Registry registry() {
        return registry;
    }

    /**
     * Checks two descriptors.
     *
     * @param source the source
     * @param destination the destination
     * @return the reasons (empty if compatible) and the version to use
     */
    public CompatibilityReport check(DeviceDescriptor source, DeviceDescriptor destination) {
        return check(source, destination, null);
    }

    /**
     * Checks two descriptors, and that the source's definition of the model is the destination's.
     *
     * @param source the source
     * @param destination the destination
     * @param sourceModelDigest SHA-256 of the source's canonical model entry, empty when the offer carried none (refused
     *        with MODEL_DEFINITION_MISMATCH), or null to skip that check (offline comparison of two descriptors)
     * @return the reasons (empty if compatible) and the version to use
     */
    public CompatibilityReport check(DeviceDescriptor source, DeviceDescriptor destination, byte[] sourceModelDigest) {
        List<Incompatibility> reasons = new ArrayList<>();
        if (!source.modelId().equals(destination.modelId())) {
            reasons.add(new Incompatibility(ReasonCode.MODEL_MISMATCH, source.modelId(),
                    "source is " + source.modelId() + ", destination is " + destination.modelId()));
        }
        Optional<DeviceModel> found = registry.model(source.modelId());
        if (found.isEmpty()) {
            reasons.add(new Incompatibility(ReasonCode.UNKNOWN_MODEL, source.modelId(), "the registry has no model " + source.modelId()));
            return new CompatibilityReport(reasons, 0);
        }
        DeviceModel model = found.get();
        SignatureCheck sig = registry.verify(model.id(), trustedModelSigners);
        if (sig.status() == SignatureCheck.Status.INVALID) {
            reasons.add(new Incompatibility(ReasonCode.SIGNATURE_INVALID, model.id(),
                    "signature by " + sig.signer() + " (" + sig.key() + ") does not verify: the entry was modified after signing"));
        } else if (requireTrustedModel && sig.status() != SignatureCheck.Status.TRUSTED) {
            reasons.add(new Incompatibility(ReasonCode.UNTRUSTED_MODEL, model.id(),
                    "entry is " + sig.status() + (sig.signer() == null ? "" : " (signed by " + sig.signer() + ")") + "; a trusted signature is required"));
        }
        if (sourceModelDigest != null && sourceModelDigest.length == 0) {
            // An offer without a digest does not say which definition of the model the source follows: never assume ours.
            reasons.add(new Incompatibility(ReasonCode.MODEL_DEFINITION_MISMATCH, model.id(),
                    "the offer carries no model digest; the destination's revision " + model.revision() + " cannot be confirmed"));
        } else if (sourceModelDigest != null && !MessageDigest.isEqual(sourceModelDigest, Registry.modelDigest(model))) {
            reasons.add(new Incompatibility(ReasonCode.MODEL_DEFINITION_MISMATCH, model.id(),
                    "the source's definition of the model (revision unknown here) differs from the destination's revision " + model.revision()));
        }
        Map<String, ParameterValue> src = parameters(model, source, "source", reasons);
        Map<String, ParameterValue> dst = parameters(model, destination, "destination", reasons);
        for (Parameter p : model.parameters()) {
            ParameterValue a = src.get(p.name());
            ParameterValue b = dst.get(p.name());
            if (p.mustMatch() && a != null && b != null && !Parameter.sameValue(a, b)) {
                reasons.add(new Incompatibility(ReasonCode.PARAMETER_MISMATCH, p.name(),
                        "source has " + describe(a) + ", destination has " + describe(b)));
            }
        }
        int chosen = versions(model, source, destination, reasons);
        return new CompatibilityReport(reasons, reasons.isEmpty() ? chosen : 0);
    }

    private static Map<String, ParameterValue> parameters(DeviceModel model, DeviceDescriptor d, String side, List<Incompatibility> reasons) {
        Map<String, ParameterValue> typed = new LinkedHashMap<>();
        boolean typeProblem = false;
        for (Map.Entry<String, String> e : d.parameters().entrySet()) {
            Optional<Parameter> p = model.parameter(e.getKey());
            if (p.isEmpty()) {
                reasons.add(new Incompatibility(ReasonCode.UNKNOWN_PARAMETER, e.getKey(),
                        side + " sets " + e.getKey() + ", which model " + model.id() + " does not define"));
                continue;
            }
            try {
                ParameterValue v = ParameterValue.parse(p.get().type(), e.getValue());
                typed.put(e.getKey(), v);
                for (String problem : p.get().check(v)) {
                    reasons.add(new Incompatibility(ReasonCode.PARAMETER_NOT_ALLOWED, e.getKey(), side + ": " + problem));
                }
            } catch (IllegalArgumentException ex) {
                typeProblem = true;
                reasons.add(new Incompatibility(ReasonCode.PARAMETER_TYPE, e.getKey(), side + ": " + ex.getMessage()));
            }
        }
        Map<String, ParameterValue> all = model.withDefaults(typed);
        for (Parameter p : model.parameters()) {
            if (!all.containsKey(p.name()) && !d.parameters().containsKey(p.name())) {
                reasons.add(new Incompatibility(ReasonCode.PARAMETER_MISSING, p.name(), side + " does not set required parameter " + p.name()));
            }
        }
        if (!typeProblem) {
            for (Constraint c : model.constraints()) {
                if (!c.satisfied(all)) {
                    reasons.add(new Incompatibility(ReasonCode.CONSTRAINT_VIOLATED, c.id(), side + " violates " + c + describe(c, all)));
                }
            }
        }
        return all;
    }

    private static String describe(Constraint c, Map<String, ParameterValue> values) {
        StringBuilder b = new StringBuilder(" (");
        TreeSet<String> names = new TreeSet<>();
        if (c.when() != null) {
            names.add(c.when().param());
        }
        names.add(c.require().param());
        if (c.require().otherParam() != null) {
            names.add(c.require().otherParam());
        }
        for (String n : names) {
            ParameterValue v = values.get(n);
            b.append(n).append('=').append(v == null ? "unset" : v.text()).append(n.equals(names.last()) ? "" : ", ");
        }
        return b.append(')').toString();
    }

    private static int versions(DeviceModel model, DeviceDescriptor source, DeviceDescriptor destination, List<Incompatibility> reasons) {
        if (!source.formatClass().equals(destination.formatClass())) {
            reasons.add(new Incompatibility(ReasonCode.FORMAT_CLASS_MISMATCH, source.formatClass(),
                    "source writes " + source.formatClass() + ", destination reads " + destination.formatClass()));
            return 0;
        }
        Optional<FormatClass> fc = model.formatClass(source.formatClass());
        if (fc.isEmpty()) {
            reasons.add(new Incompatibility(ReasonCode.UNKNOWN_FORMAT_CLASS, source.formatClass(),
                    "model " + model.id() + " has no format class " + source.formatClass()));
            return 0;
        }
        TreeSet<Integer> defined = new TreeSet<>(fc.get().versions().stream().map(FormatVersion::version).toList());
        implementation(model, source, "source", source.writeVersions(), true, reasons);
        implementation(model, destination, "destination", destination.readVersions(), false, reasons);
        for (int v : new TreeSet<>(source.writeVersions())) {
            if (!defined.contains(v)) {
                reasons.add(new Incompatibility(ReasonCode.UNKNOWN_FORMAT_VERSION, fc.get().id(),
                        "source claims to write version " + v + ", defined versions are " + defined));
            }
        }
        for (int v : new TreeSet<>(destination.readVersions())) {
            if (!defined.contains(v)) {
                reasons.add(new Incompatibility(ReasonCode.UNKNOWN_FORMAT_VERSION, fc.get().id(),
                        "destination claims to read version " + v + ", defined versions are " + defined));
            }
        }
        TreeSet<Integer> common = new TreeSet<>(source.writeVersions());
        common.retainAll(destination.readVersions());
        common.retainAll(defined);
        if (common.isEmpty()) {
            reasons.add(new Incompatibility(ReasonCode.NO_COMMON_VERSION, fc.get().id(),
                    "source writes " + new TreeSet<>(source.writeVersions()) + ", destination reads " + new TreeSet<>(destination.readVersions())));
            return 0;
        }
        return common.last();
    }

    /**
     * A side whose implementation id the registry lists must use that entry's format class and claim no version the
     * entry does not list (stream-format.md §9.5 item 6): a descriptor cannot promise more than its published entry.
     */
    private static void implementation(DeviceModel model, DeviceDescriptor d, String side, List<Integer> claimed, boolean writes,
            List<Incompatibility> reasons) {
        Optional<Implementation> listed = model.implementation(d.implementationId());
        if (listed.isEmpty()) {
            return;
        }
        Implementation i = listed.get();
        if (!i.formatClass().equals(d.formatClass())) {
            reasons.add(new Incompatibility(ReasonCode.IMPLEMENTATION_MISMATCH, i.id(),
                    side + " uses format class " + d.formatClass() + ", the registry lists " + i.formatClass() + " for " + i.id()));
            return;
        }
        List<Integer> allowed = writes ? i.writeVersions() : i.readVersions();
        TreeSet<Integer> extra = new TreeSet<>(claimed);
        extra.removeAll(allowed);
        if (!extra.isEmpty()) {
            reasons.add(new Incompatibility(ReasonCode.IMPLEMENTATION_MISMATCH, i.id(), side + " claims to " + (writes ? "write" : "read")
                    + " versions " + extra + " that the registry does not list for " + i.id() + " (" + new TreeSet<>(allowed) + ")"));
        }
    }

    /** Large unsigned values (feature words) read better in hexadecimal too. */
    private static String describe(ParameterValue v) {
        if (v instanceof ParameterValue.Int i && i.unsigned() && Long.compareUnsigned(i.value(), 0xffff) > 0) {
            return i.text() + " (0x" + Long.toHexString(i.value()) + ")";
        }
        return v.text();
    }
}
