/*
 * address.h - socket address text forms: "1.2.3.4:443", "[::1]:443",
 * "unix:/run/x.sock". Parsing and printing only; never opens a socket.
 */
#ifndef SNISPLICE_CORE_ADDRESS_H
#define SNISPLICE_CORE_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ADDRESS_TEXT_MAX 128

struct address {
    struct sockaddr_storage storage;
    socklen_t length;
};

/* Parse text into *out. On failure writes a one-line reason to error. */
bool address_parse(const char *text, struct address *out, char *error, size_t error_size);

/* ::ffff:a.b.c.d (with its port) as the IPv4 address it carries, into
 * *out; false, *out untouched, for any other address. */
struct sockaddr_in;
bool address_unmap_ipv4(const struct sockaddr *address, struct sockaddr_in *out);

/* IPv4:port or [IPv6]:port only, IPv4-mapped ones included: the stats
 * endpoint's, whose dual-stack socket binds a mapped address. A unix:
 * path is refused, with the reason below. */
bool address_parse_tcp(const char *text, struct address *out, char *error, size_t error_size);

/* The same for an address to listen on, without IPv4-mapped ones (the
 * kernel refuses them to listeners' IPv6-only sockets). snisplice accepts
 * TCP connections alone (the listener's TCP options, TCP_DEFER_ACCEPT,
 * the client's address and port), so a unix: path is refused here, with
 * that reason, not when binding it. */
bool address_parse_listen(const char *text, struct address *out, char *error, size_t error_size);

/* "name:port" where name is a DNS host name (hostname.h's letters, digits,
 * '-' and '.', not all digits and dots, so a mistyped IPv4 address is not
 * taken for a name): the name, lower-cased, into host (HOSTNAME_MAX + 1
 * bytes) and the port. False for every other text; resolving the name is
 * the caller's (config/host_resolve.c), as core never does I/O. */
bool address_split_host_name(const char *text, char *host, size_t host_size, uint16_t *port);

/* Print in the same form address_parse() accepts. */
void address_format(const struct address *address, char *out, size_t out_size);

int address_family(const struct address *address);
/* The port in network byte order; 0 for a unix address. */
uint16_t address_port(const struct address *address);
/* The same family, address and port (byte for byte, as bound). */
bool address_equal(const struct address *a, const struct address *b);
/* 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104: only this host can connect. */
bool address_is_loopback(const struct address *address);

/* A CIDR block: "10.0.0.0/8", "2001:db8::/32"; a bare address is a /32 or
 * /128. Used for the sources trusted to send a PROXY protocol header. */
struct address_range {
    int family;         /* AF_INET or AF_INET6 */
    uint8_t bytes[16];  /* network order; bits past prefix_length are zero */
    uint8_t prefix_length;
};

bool address_range_parse(const char *text, struct address_range *out, char *error, size_t error_size);

/* Whether an AF_INET/AF_INET6 socket address lies inside the range. */
bool address_range_contains(const struct address_range *range, const struct sockaddr *address);

#endif
