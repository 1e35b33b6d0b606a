/*
 * stats.c - see stats.h.
 */
#include "stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "child_process.h"
#include "net.h"

char *stats_fetch(uint16_t port, const char *path)
{
    int fd = net_connect(port);
    if (fd < 0)
        return NULL;
    char request[512];
    int length = snprintf(request, sizeof request, "GET %s HTTP/1.0\r\nHost: test\r\n\r\n", path);
    if (length < 0 || (size_t)length >= sizeof request || !net_send_all(fd, request, (size_t)length)) {
        close(fd);
        return NULL;
    }
    /* Half-closed: the endpoint then closes its end as soon as the whole
     * answer is with its kernel, so the proxy's descriptors are counted
     * without this scrape's once the answer has arrived (a client still
     * open is waited for, lingering, until it closes). */
    shutdown(fd, SHUT_WR);
    size_t capacity = 1 << 20, used = 0;
    char *response = calloc(1, capacity);
    ssize_t got;
    while (response && used + 1 < capacity && (got = recv(fd, response + used, capacity - 1 - used, 0)) > 0)
        used += (size_t)got;
    close(fd);
    return response;
}

long long stats_sample(const char *text, const char *series)
{
    size_t length = strlen(series);
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, series, length) == 0 && line[length] == ' ')
            return atoll(line + length + 1);
    }
    return -1;
}

long long stats_value(uint16_t port, const char *series)
{
    char *text = stats_fetch(port, "/metrics");
    long long value = stats_sample(text, series);
    free(text);
    return value;
}

int stats_fds_outside_pool(const struct proxy *proxy, uint16_t stats_port, long long *pipes_in_use)
{
    char *text = stats_fetch(stats_port, "/metrics");
    long long idle = stats_sample(text, "snisplice_pipe_pool_pipes{state=\"idle\"}");
    *pipes_in_use = stats_sample(text, "snisplice_pipe_pool_pipes{state=\"in_use\"}");
    free(text);
    if (idle < 0 || *pipes_in_use < 0)
        return -1;
    /* Counted after the scrape. The endpoint closes its end of the scrape
     * once it reads the client's end of stream (a lingering close), which
     * its thread may not have done yet when the answer is in: count until
     * the number holds for 50 ms (at most a second). */
    int count = proxy_count_when_still(proxy, proxy_fd_count, 50, 1000);
    return count - 2 * (int)(idle + *pipes_in_use);
}
