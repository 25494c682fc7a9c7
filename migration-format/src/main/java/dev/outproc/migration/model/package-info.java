/**
 * Device model registry: models named by stable domain-rooted ids with PCI aliases, typed parameters, constraints
 * across parameters, state-format classes shared by several implementations, and Ed25519-signed entries. Registries
 * are JSON files ({@link dev.outproc.migration.model.Registry#parse}) that can be merged; {@link
 * dev.outproc.migration.model.SchemaDiff} flags breaking changes between two versions of a model.
 */
package dev.outproc.migration.model;
