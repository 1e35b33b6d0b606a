/*
 * units.c - sizes and durations as written in the config file.
 */
#include "units.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Leading decimal digits; false on none or overflow. */
static bool parse_number(const char **text, uint64_t *value)
{
    const char *c = *text;
    if (!isdigit((unsigned char)*c))
        return false;
    uint64_t result = 0;
    for (; isdigit((unsigned char)*c); c++) {
        uint64_t digit = (uint64_t)(*c - '0');
        if (result > (UINT64_MAX - digit) / 10)
            return false;
        result = result * 10 + digit;
    }
    *text = c;
    *value = result;
    return true;
}

static bool scale(uint64_t value, uint64_t factor, uint64_t *out)
{
    if (factor != 0 && value > UINT64_MAX / factor)
        return false;
    *out = value * factor;
    return true;
}

bool units_parse_size(const char *text, uint64_t *bytes)
{
    uint64_t value;
    if (!parse_number(&text, &value))
        return false;
    if (*text == '\0')
        return scale(value, 1, bytes);
    if (text[1] != '\0')
        return false;
    switch (tolower((unsigned char)*text)) {
    case 'k': return scale(value, 1024ull, bytes);
    case 'm': return scale(value, 1024ull * 1024, bytes);
    case 'g': return scale(value, 1024ull * 1024 * 1024, bytes);
    default: return false;
    }
}

bool units_parse_duration(const char *text, uint64_t *milliseconds)
{
    uint64_t value;
    if (!parse_number(&text, &value))
        return false;
    static const struct { const char *suffix; uint64_t factor; } units[] = {
        { "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 },
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcasecmp(text, units[i].suffix) == 0)
            return scale(value, units[i].factor, milliseconds);
    return false;
}

bool units_parse_count(const char *text, uint64_t low, uint64_t high, uint64_t *count)
{
    if (!isdigit((unsigned char)*text))
        return false;
    char *end;
    errno = 0;
    unsigned long long number = strtoull(text, &end, 10);
    if (errno || *end != '\0' || number < low || number > high)
        return false;
    *count = number;
    return true;
}
