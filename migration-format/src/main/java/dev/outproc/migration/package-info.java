/** The outproc device-state stream. */
package dev.outproc.migration;
