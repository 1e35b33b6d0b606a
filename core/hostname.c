/*
 * hostname.c - the one definition of a valid server name (see hostname.h).
 *
 * Owns validating a DNS host name and writing its normal form: lower case,
 * one trailing dot dropped. Bytes allowed: [A-Za-z0-9._-]; no empty label;
 * at most HOSTNAME_MAX bytes once the trailing dot is gone. Hyphens are
 * accepted anywhere in a label (like nginx, which does not enforce the LDH
 * rule on server names), so "-", "-a.com" and "a-.com" are valid; so are
 * underscores, which clients send (OpenSSL, curl) and nginx routes
 * ("my_app.lan"), and which Docker names containers with.
 * Must never: read past name + len, write past out + HOSTNAME_MAX + 1,
 * touch *out_len or out on failure, allocate or do I/O.
 */
#include "hostname.h"

/* The bytes a name may hold; a table, as the ClientHello parser asks for
 * every byte of every SNI. */
static const bool is_name_byte[256] = {
    ['-'] = true, ['.'] = true, ['0' ... '9'] = true, ['A' ... 'Z'] = true, ['_'] = true, ['a' ... 'z'] = true,
};

static char to_lower(unsigned char byte)
{
    return (char)((unsigned)(byte - 'A') < 26u ? byte | 0x20 : byte);
}

/* Allowed bytes only, and no empty label (so no leading, trailing or double dot). */
static bool has_valid_labels(const char *name, size_t len)
{
    unsigned char previous = '.';
    for (size_t i = 0; i < len; i++) {
        unsigned char byte = (unsigned char)name[i];
        if (!is_name_byte[byte] || (byte == '.' && previous == '.'))
            return false;
        previous = byte;
    }
    return previous != '.';
}

bool hostname_normalize(const char *name, size_t len, char *out, size_t *out_len)
{
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > HOSTNAME_MAX || !has_valid_labels(name, len))
        return false;
    for (size_t i = 0; i < len; i++)
        out[i] = to_lower((unsigned char)name[i]);
    out[len] = '\0';
    *out_len = len;
    return true;
}
