/*
 * service.h - telling a service manager what the process is doing.
 *
 * Implements the sd_notify(3) datagram protocol directly (no libsystemd):
 * when NOTIFY_SOCKET is set, "READY=1" after the workers listen,
 * "RELOADING=1" / "READY=1" around a reload and "STOPPING=1" at shutdown.
 * Without NOTIFY_SOCKET every call is a no-op. Never blocks, never fails
 * the caller: a lost notification is logged, not fatal.
 */
#ifndef SNISPLICE_IO_SERVICE_H
#define SNISPLICE_IO_SERVICE_H

void service_notify(const char *state);

#endif
