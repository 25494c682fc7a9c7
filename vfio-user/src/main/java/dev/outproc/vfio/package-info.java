/** The vfio-user protocol (not yet implemented). */
package dev.outproc.vfio;
