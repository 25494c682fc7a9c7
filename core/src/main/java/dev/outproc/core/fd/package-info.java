/** File-descriptor ownership and errors of Linux system calls. */
package dev.outproc.core.fd;
