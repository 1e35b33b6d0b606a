/*
 * socket_address.h - unit-test helper: a bare IPv4 or IPv6 address
 * ("192.0.2.1", "2001:db8::1", "::ffff:10.0.0.1") as the socket address a
 * kernel would report for a client; fails the test on anything else.
 */
#ifndef SNISPLICE_TESTS_UNIT_SOCKET_ADDRESS_H
#define SNISPLICE_TESTS_UNIT_SOCKET_ADDRESS_H

#include <sys/socket.h>

struct sockaddr_storage socket_address_of(const char *text);

#endif
