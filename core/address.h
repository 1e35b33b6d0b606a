/*
 * address.h - socket address text forms: "1.2.3.4:443", "[::1]:443",
 * "unix:/run/x.sock". Parsing and printing only; never opens a socket.
 */
#ifndef SNISPLICE_CORE_ADDRESS_H
#define SNISPLICE_CORE_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define ADDRESS_TEXT_MAX 128

struct address {
    struct sockaddr_storage storage;
    socklen_t length;
};

/* Parse text into *out. On failure writes a one-line reason to error. */
bool address_parse(const char *text, struct address *out, char *error, size_t error_size);

/* Print in the same form address_parse() accepts. */
void address_format(const struct address *address, char *out, size_t out_size);

int address_family(const struct address *address);

#endif
