/*
 * routed.c - one snisplice in front of one in-test backend (see routed.h).
 */
#include "routed.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "integration.h"
#include "net.h"

bool routed_start(struct routed *routed, uint16_t proxy_port, uint16_t backend_port,
                  const char *name, backend_handler handler)
{
    return routed_start_on(routed, "127.0.0.1", proxy_port, backend_port, name, handler);
}

bool routed_start_on(struct routed *routed, const char *listen_host, uint16_t proxy_port,
                     uint16_t backend_port, const char *name, backend_handler handler)
{
    routed->hello = hello_load_capture(HELLO_CHROMIUM);
    routed->config = NULL;
    if (!backend_start(&routed->backend, name, backend_port, handler, routed)) {
        hello_free(&routed->hello);
        return false;
    }
    routed->config = text_format("[global]\nworkers = 2\n\n[listen]\naddress = %s:%u\n\n"
                                 "[routes]\ndefault = 127.0.0.1:%u\n", listen_host, proxy_port, backend_port);
    if (proxy_start(&routed->proxy, routed->config, proxy_port))
        return true;
    proxy_release(&routed->proxy);
    backend_stop(&routed->backend);
    free(routed->config);
    routed->config = NULL;
    hello_free(&routed->hello);
    return false;
}

int routed_stop(struct routed *routed)
{
    backend_stop(&routed->backend);
    int status = proxy_stop(&routed->proxy, 10000);
    free(routed->config);
    routed->config = NULL;
    hello_free(&routed->hello);
    return status;
}

bool routed_receive_hello(const struct routed *routed, int fd)
{
    static _Thread_local char hello[4096];
    size_t length = routed->hello.length;
    return length <= sizeof hello && net_receive_exact(fd, hello, length, 3000) == length;
}

void routed_reply_and_close(struct backend *backend, int fd, void *context)
{
    (void)backend;
    static _Thread_local char buffer[4096];
    if (!routed_receive_hello(context, fd))
        return;
    memset(buffer, 'r', ROUTED_REPLY_BYTES);
    send(fd, buffer, ROUTED_REPLY_BYTES, MSG_MORE | MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
    while (recv(fd, buffer, sizeof buffer, 0) > 0) {
    }
}

struct routed_exchange routed_short_exchange(const struct routed *routed, uint16_t port)
{
    struct routed_exchange exchange = { .fd = net_connect(port), .reply_bytes = 0, .eof = false };
    if (exchange.fd < 0)
        return exchange;
    net_set_timeouts(exchange.fd, 5000);
    if (!net_send_all(exchange.fd, routed->hello.data, routed->hello.length))
        return exchange;
    static char buffer[4096];
    struct net_receive_result result =
        net_receive_until_closed(exchange.fd, buffer, sizeof buffer, 5000);
    exchange.reply_bytes = result.total;
    exchange.eof = result.eof;
    return exchange;
}
