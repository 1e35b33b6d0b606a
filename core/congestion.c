/*
 * congestion.c - names the TCP congestion control algorithm of a proxy
 * socket from its `congestion_control` and its leg's address (see
 * congestion.h for why). Pure.
 */
#include "congestion.h"

#include <sys/socket.h>

const char *congestion_algorithm(const struct congestion *congestion, const struct address *leg)
{
    if (address_family(leg) == AF_UNIX)
        return NULL;
    switch ((enum congestion_choice)congestion->choice) {
    case CONGESTION_AUTO:
        return address_is_loopback(leg) ? CONGESTION_LOOPBACK : NULL;
    case CONGESTION_NAMED:
        return congestion->name;
    case CONGESTION_SYSTEM:
        break;
    }
    return NULL;
}
