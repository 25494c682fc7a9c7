/** A PCI device model for vfio-user servers: config space with BAR sizing and capabilities, BARs, MSI-X. */
package dev.outproc.vfio.pci;
