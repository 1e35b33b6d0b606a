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

static bool is_name_byte(unsigned char byte)
{
    return (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') ||
           (byte >= '0' && byte <= '9') || byte == '-' || byte == '.' || byte == '_';
}

static char to_lower(unsigned char byte)
{
    return (char)(byte >= 'A' && byte <= 'Z' ? byte - 'A' + 'a' : byte);
}

/* Allowed bytes only, and no empty label (so no leading, trailing or double dot). */
static bool has_valid_labels(const char *name, size_t len)
{
    size_t label_length = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char byte = (unsigned char)name[i];
        if (!is_name_byte(byte))
            return false;
        if (byte != '.') {
            label_length++;
            continue;
        }
        if (label_length == 0)
            return false;
        label_length = 0;
    }
    return label_length > 0;
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
