/*
 * hostname.c - the one definition of a valid server name.
 */
#include "hostname.h"

static bool is_name_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.';
}

bool hostname_normalize(const char *name, size_t len, char *out, size_t *out_len)
{
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > HOSTNAME_MAX)
        return false;
    size_t label_length = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!is_name_byte(c))
            return false;
        if (c == '.') {
            if (label_length == 0)
                return false;
            label_length = 0;
        } else {
            label_length++;
        }
    }
    if (label_length == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
    out[len] = '\0';
    *out_len = len;
    return true;
}
