package dev.outproc.migration.model;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A device model: a stable, domain-rooted id for a kind of device, its PCI aliases, typed parameters, constraints,
 * state-format classes and known implementations.
 *
 * @param id e.g. {@code virtio-spec.org/pci/virtio-blk}
 * @param revision revision of this entry (increases when the entry changes)
 * @param description what the model is
 * @param pciAliases PCI identities
 * @param parameters typed parameters
 * @param constraints constraints across parameters
 * @param formatClasses state-format classes
 * @param implementations known implementations
 */
public record DeviceModel(String id, int revision, String description, List<PciAlias> pciAliases,
        List<Parameter> parameters, List<Constraint> constraints, List<FormatClass> formatClasses,
        List<Implementation> implementations) {

    /** Canonical constructor: copies the lists. */
    public DeviceModel {
        pciAliases = List.copyOf(pciAliases);
        parameters = List.copyOf(parameters);
        constraints = List.copyOf(constraints);
        formatClasses = List.copyOf(formatClasses);
        implementations = List.copyOf(implementations);
    }

    /**
     * Finds a parameter.
     *
     * @param name parameter name
     * @return the parameter, if defined
     */
    public Optional<Parameter> parameter(String name) {
        return parameters.stream().filter(p -> p.name().equals(name)).findFirst();
    }

    /**
     * Finds a format class.
     *
     * @param classId format class id
     * @return the class, if defined
     */
    public Optional<FormatClass> formatClass(String classId) {
        return formatClasses.stream().filter(f -> f.id().equals(classId)).findFirst();
    }

    /**
     * Finds an implementation.
     *
     * @param implId implementation id
     * @return the implementation, if listed
     */
    public Optional<Implementation> implementation(String implId) {
        return implementations.stream().filter(i -> i.id().equals(implId)).findFirst();
    }

    /**
     * Applies defaults to a set of values: every parameter with a default gets it when absent.
     *
     * @param given values given by a descriptor
     * @return values with defaults, in parameter order, then unknown names
     */
    public Map<String, ParameterValue> withDefaults(Map<String, ParameterValue> given) {
        Map<String, ParameterValue> all = new LinkedHashMap<>();
        for (Parameter p : parameters) {
            ParameterValue v = given.get(p.name());
            if (v == null) {
                v = p.defaultValue();
            }
            if (v != null) {
                all.put(p.name(), v);
            }
        }
        given.forEach(all::putIfAbsent);
        return all;
    }
}
