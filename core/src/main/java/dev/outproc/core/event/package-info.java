/** Eventfds and the epoll event loop that dispatches kicks and socket readiness. */
package dev.outproc.core.event;
