/*
 * test_reload_listen.c - SIGHUP adds and removes listen addresses without
 * touching the others: an added address is served (routed or plain), a
 * removed one stops accepting and frees its port while a connection
 * accepted through it keeps relaying, an address moved to another listener
 * takes that listener's behaviour, and a reload whose new address cannot be
 * bound is rejected whole, naming the address. A connection still reading
 * its hello during a reload is routed by the listener it came through, in
 * the configuration it was accepted under, even when the reload renumbers
 * the listeners. An address another socket listens on, even one that
 * would let SO_REUSEPORT join it, is refused at start and in a reload.
 * An address one reload removes and the next puts back at once, before
 * the workers closed its sockets, is not refused as another program's.
 * An address a reload turns from SNI routing into a plain forward stops
 * deferring accepts (its socket is kept: its options are set again).
 * Ports: blocks 69, 155, 200, 390.
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/integration.h"

static struct proxy relisten_proxy;
static struct backend alpha, bravo;
#define STATS_PORT TEST_PORT(69, 12)

static void relisten_fini(void)
{
    proxy_release(&relisten_proxy);
    integration_cleanup();
}

static char *config_with(uint16_t main_port, const char *extra_listen_lines, const char *more)
{
    char *body = text_format("%s[routes]\ndefault = alpha\n"
                             "[upstream alpha]\nserver = 127.0.0.1:%u\n"
                             "[upstream bravo]\nserver = 127.0.0.1:%u\n%s",
                             extra_listen_lines, TEST_PORT(69, 10), TEST_PORT(69, 11), more);
    char *globals = text_format("stats = 127.0.0.1:%u\n", STATS_PORT);
    char *config = config_text(main_port, globals, body);
    free(globals);
    free(body);
    return config;
}

/* The proxy's fds minus the pipes its pools keep (which grow with traffic,
 * by design): what listening sockets and connections hold. */
static int proxy_fds(void)
{
    long long pipes_in_use;
    int fds = stats_fds_outside_pool(&relisten_proxy, STATS_PORT, &pipes_in_use);
    cr_assert_geq(fds, 0, "no stats endpoint");
    return fds;
}

static void reload_and_wait(const char *config, const char *expected)
{
    char *before = proxy_stderr(&relisten_proxy);
    size_t seen = strlen(before);
    free(before);
    proxy_reload(&relisten_proxy, config);
    long long deadline = monotonic_ms() + 5000;
    for (;;) {
        char *log = proxy_stderr(&relisten_proxy);
        bool found = strstr(log + seen, expected) != NULL;
        free(log);
        if (found)
            break;
        cr_assert_lt(monotonic_ms(), deadline, "no '%s' after the reload", expected);
        sleep_ms(20);
    }
    sleep_ms(100); /* every worker adopts the snapshot at its next loop turn */
}

static bool answered_by(uint16_t port, const struct hello_bytes *hello, const char *name)
{
    char *reply = exchange_once(port, hello->data, hello->length, 5000, NULL);
    char *want = text_format("%s\n", name);
    bool ok = reply && strcmp(reply, want) == 0;
    free(reply);
    free(want);
    return ok;
}

Test(reload_listen, addresses_come_and_go_without_touching_the_others, .init = integration_init,
     .fini = relisten_fini)
{
    uint16_t main_port = TEST_PORT(69, 0), added_port = TEST_PORT(69, 1), plain_port = TEST_PORT(69, 2);
    uint16_t taken_port = TEST_PORT(69, 3);
    cr_assert(backend_start(&alpha, "alpha", TEST_PORT(69, 10), NULL, NULL));
    cr_assert(backend_start(&bravo, "bravo", TEST_PORT(69, 11), NULL, NULL));
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(hello.data);
    char *first = config_with(main_port, "", "");
    cr_assert(proxy_start(&relisten_proxy, first, main_port));
    int fds_first = proxy_fds();

    /* Add one address to [listen] and a plain listener. */
    char *added_lines = text_format("address = 127.0.0.1:%u\n", added_port);
    char *plain = text_format("[listen plain]\naddress = 127.0.0.1:%u\nupstream = bravo\n", plain_port);
    char *second = config_with(main_port, added_lines, plain);
    reload_and_wait(second, "reloaded");
    for (int i = 0; i < 20; i++)
        cr_expect(answered_by(added_port, &hello, "alpha"), "added address, connection %d", i);
    cr_expect(answered_by(plain_port, &hello, "bravo"), "added plain listener");
    cr_expect(answered_by(main_port, &hello, "alpha"), "the untouched address");
    /* A connection accepted through the address about to go. */
    int held = net_connect(added_port);
    cr_assert_geq(held, 0);
    cr_assert(net_send_all(held, hello.data, hello.length));
    char greeting[7] = "";
    cr_assert_eq(net_receive_exact(held, greeting, 6, 5000), 6);
    unsigned alpha_done = backend_finished(&alpha);
    int fds_second = proxy_fds();
    cr_expect_geq(fds_second - fds_first, 8 + 2,
                  "2 workers x 2 new addresses, the main thread's copies of those, the held connection: %d -> %d",
                  fds_first, fds_second);

    /* Remove it; move the plain listener's address into [listen]. */
    char *moved_lines = text_format("address = 127.0.0.1:%u\n", plain_port);
    char *third = config_with(main_port, moved_lines, "");
    reload_and_wait(third, "reloaded");
    cr_expect_null(exchange_once(added_port, hello.data, hello.length, 2000, NULL),
                   "the removed address still accepts");
    cr_expect(answered_by(plain_port, &hello, "alpha"), "a moved address follows its new listener");
    cr_expect(answered_by(main_port, &hello, "alpha"));
    int probe = net_listen(added_port);
    cr_expect_geq(probe, 0, "the removed port is not free");
    if (probe >= 0)
        close(probe);
    /* At least the main thread's 2 copies (kept for an upgrade) go with the
     * reload itself; the workers' 2 sockets when they adopt it. */
    long long settle_third = monotonic_ms() + 3000;
    while (proxy_fds() > fds_second - 2 && monotonic_ms() < settle_third)
        sleep_ms(20);
    int fds_third = proxy_fds();
    cr_expect_leq(fds_third, fds_second - 2, "the removed address's sockets were not closed: %d -> %d",
                  fds_second, fds_third);

    /* The held connection keeps relaying after its listener is gone. */
    cr_expect(net_send_all(held, "after", 5));
    shutdown(held, SHUT_WR);
    cr_expect(backend_wait_finished(&alpha, alpha_done + 3, 5000));
    close(held);

    /* A new address that cannot be bound: the reload is refused whole. */
    sleep_ms(200);
    int fds_before_refusal = proxy_fds();
    int blocker = net_listen(taken_port);
    cr_assert_geq(blocker, 0);
    char *taken_lines = text_format("address = 127.0.0.1:%u\naddress = 127.0.0.1:%u\n", plain_port, taken_port);
    char *fourth = config_with(main_port, taken_lines, "");
    char *wanted = text_format("cannot listen on 127.0.0.1:%u", taken_port);
    reload_and_wait(fourth, wanted);
    cr_expect(answered_by(main_port, &hello, "alpha"), "the old configuration keeps serving");
    cr_expect(answered_by(plain_port, &hello, "alpha"));
    /* The connections just made may still be closing: let them finish. */
    long long settle = monotonic_ms() + 3000;
    while (proxy_fds() > fds_before_refusal && monotonic_ms() < settle)
        sleep_ms(20);
    /* Not equal: the removed address's sockets may still have been
     * closing in a worker when the count before was taken. */
    int fds_after_refusal = proxy_fds();
    cr_expect_leq(fds_after_refusal, fds_before_refusal, "a refused reload leaked sockets: %d -> %d",
                  fds_before_refusal, fds_after_refusal);
    close(blocker);

    hello_free(&hello);
    free(wanted);
    free(fourth);
    free(taken_lines);
    free(third);
    free(moved_lines);
    free(second);
    free(plain);
    free(added_lines);
    free(first);
    cr_expect_eq(proxy_stop(&relisten_proxy, 10000), 0);
}

/* The same upstreams on backends of their own (tests run in parallel). */
static char *renumbering_config(uint16_t main_port, const char *listeners)
{
    char *body = text_format("[routes]\ndefault = alpha\n%s"
                             "[upstream alpha]\nserver = 127.0.0.1:%u\n"
                             "[upstream bravo]\nserver = 127.0.0.1:%u\n",
                             listeners, TEST_PORT(69, 13), TEST_PORT(69, 14));
    char *config = config_text(main_port, NULL, body);
    free(body);
    return config;
}

Test(reload_listen, a_hello_in_progress_keeps_its_listener_across_a_reload, .init = integration_init,
     .fini = relisten_fini)
{
    uint16_t main_port = TEST_PORT(69, 4), second_port = TEST_PORT(69, 5), inserted_port = TEST_PORT(69, 6);
    cr_assert(backend_start(&alpha, "alpha", TEST_PORT(69, 13), NULL, NULL));
    cr_assert(backend_start(&bravo, "bravo", TEST_PORT(69, 14), NULL, NULL));
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    cr_assert_not_null(hello.data);
    /* [listen second] is the second listener; the reload inserts a plain
     * forward to bravo before it, which takes its number. */
    char *second = text_format("[listen second]\naddress = 127.0.0.1:%u\n[routes second]\ndefault = alpha\n",
                               second_port);
    char *inserted = text_format("[listen inserted]\naddress = 127.0.0.1:%u\nupstream = bravo\n%s",
                                 inserted_port, second);
    char *before = renumbering_config(main_port, second);
    char *after = renumbering_config(main_port, inserted);
    cr_assert(proxy_start(&relisten_proxy, before, main_port));
    cr_assert(net_wait_listening(second_port, 5000));
    cr_assert(answered_by(second_port, &hello, "alpha"));

    int client = net_connect(second_port);
    cr_assert_geq(client, 0);
    size_t half = hello.length / 2;
    cr_assert(net_send_all(client, hello.data, half));
    sleep_ms(200); /* accepted (its first bytes are in) and waiting for the rest */
    reload_and_wait(after, "reloaded");
    cr_assert(net_wait_listening(inserted_port, 5000));
    cr_expect(answered_by(inserted_port, &hello, "bravo"), "the inserted listener forwards");
    cr_assert(net_send_all(client, hello.data + half, hello.length - half));
    char greeting[7] = "";
    cr_expect_eq(net_receive_exact(client, greeting, 6, 5000), 6, "no answer to the completed hello");
    cr_expect_str_eq(greeting, "alpha\n", "routed by another listener after the reload");
    close(client);
    cr_expect(answered_by(second_port, &hello, "alpha"), "new connections to the renumbered listener");

    hello_free(&hello);
    free(after);
    free(before);
    free(inserted);
    free(second);
    cr_expect_eq(proxy_stop(&relisten_proxy, 10000), 0);
}

/* A listening socket of this user's with SO_REUSEPORT, as a second
 * snisplice (or `make run` beside the service) holds it. */
static int listen_sharing_port(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on), 0);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons(port),
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(bind(fd, (struct sockaddr *)&address, sizeof address), 0);
    cr_assert_eq(listen(fd, 16), 0);
    return fd;
}

/* SO_REUSEPORT on the workers' sockets would let them join the group of
 * any socket of the same user on their address and take a share of its
 * connections, silently; nginx refuses an address in use, and so does
 * snisplice: at start (exit 1, naming it) and in a reload (rejected
 * whole, the running addresses untouched). */
Test(reload_listen, an_address_another_socket_listens_on_is_refused, .init = integration_init,
     .fini = relisten_fini)
{
    uint16_t main_port = TEST_PORT(155, 0), taken_port = TEST_PORT(155, 1), backend_port = TEST_PORT(155, 2);
    cr_assert(backend_start(&alpha, "alpha", backend_port, NULL, NULL));
    int foreign = listen_sharing_port(taken_port);
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", backend_port);
    char *wanted = text_format("cannot listen on 127.0.0.1:%u: another program listens there", taken_port);

    char *directory = temp_directory_create("taken-address");
    char *taken_config = config_text(taken_port, NULL, body);
    char *path = temp_file_write(directory, "taken.ini", taken_config);
    const char *start[] = { proxy_binary(), "-c", path, NULL };
    char *output = NULL;
    int status = child_run(start, NULL, NULL, 5000, &output);
    cr_expect_eq(status, 1, "a second listener on a held address: exit %d, output:\n%s", status, output);
    cr_expect(output && strstr(output, wanted), "output:\n%s", output);
    free(output);

    char *first = config_text(main_port, NULL, body);
    cr_assert(proxy_start(&relisten_proxy, first, main_port));
    char *lines = text_format("[listen]\naddress = 127.0.0.1:%u\naddress = 127.0.0.1:%u\n", main_port, taken_port);
    char *both = text_format("[global]\nworkers = 2\n%s[routes]\ndefault = 127.0.0.1:%u\n", lines, backend_port);
    proxy_reload(&relisten_proxy, both);
    cr_expect(proxy_stderr_wait_for(&relisten_proxy, wanted, 5000), "the reload was not refused naming the address");
    cr_expect(proxy_stderr_wait_for(&relisten_proxy, "reload rejected", 1000));
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    cr_expect(answered_by(main_port, &hello, "alpha"), "the running address after the refused reload");
    hello_free(&hello);
    cr_expect_eq(proxy_stop(&relisten_proxy, 10000), 0);

    close(foreign);
    free(both);
    free(lines);
    free(first);
    free(path);
    free(taken_config);
    free(directory);
    free(wanted);
    free(body);
}

/* Reloads in quick succession (a deploy tool's revert, a script): one
 * removes an address, the next puts it back before every worker has
 * closed its socket for the first. That socket is the process's own, not
 * another program's: the reload that adds the address back must not be
 * refused as a conflict, and the address ends up served. */
Test(reload_listen, an_address_removed_and_added_back_at_once_is_not_refused, .init = integration_init,
     .fini = relisten_fini)
{
    uint16_t main_port = TEST_PORT(200, 0), toggled_port = TEST_PORT(200, 1), backend_port = TEST_PORT(200, 2);
    cr_assert(backend_start(&alpha, "alpha", backend_port, NULL, NULL));
    char *body = text_format("[routes]\ndefault = 127.0.0.1:%u\n", backend_port);
    char *without = config_text(main_port, NULL, body);
    char *lines = text_format("[listen]\naddress = 127.0.0.1:%u\naddress = 127.0.0.1:%u\n", main_port, toggled_port);
    char *with = text_format("[global]\nworkers = 2\n%s%s", lines, body);
    cr_assert(proxy_start(&relisten_proxy, with, main_port));
    /* Each pair of reloads gives the race one chance; on the old code about
     * one pair in eighty met a socket not closed yet. */
    for (int pair = 0; pair < 1000; pair++) {
        proxy_reload(&relisten_proxy, without);
        usleep(300);
        proxy_reload(&relisten_proxy, with);
        usleep(300);
    }
    cr_assert(proxy_stderr_wait_for(&relisten_proxy, "reloaded", 5000));
    sleep_ms(500); /* the last reloads are taken in, and every worker adopts the last one */
    char *log = proxy_stderr(&relisten_proxy);
    const char *rejected = strstr(log, "reload rejected");
    cr_expect_null(rejected, "a reload was refused:\n%.300s", rejected ? rejected - 120 : "");
    free(log);
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    cr_expect(answered_by(toggled_port, &hello, "alpha"), "the address put back is not served");
    hello_free(&hello);
    cr_expect_eq(proxy_stop(&relisten_proxy, 10000), 0);
    free(with);
    free(lines);
    free(without);
    free(body);
}

/* SNI routing sets TCP_DEFER_ACCEPT on a listening socket (the kernel
 * holds a connection until its first bytes); a plain forward must not
 * have it, or a server that speaks first (SSH, SMTP) is heard only when
 * the kernel gives up waiting, a second or more later. A reload keeps the
 * socket of an address it keeps, so it must set the options again. */
Test(reload_listen, an_address_turned_plain_forward_stops_deferring_accepts, .init = integration_init,
     .fini = relisten_fini)
{
    uint16_t port = TEST_PORT(390, 0), ssh_port = TEST_PORT(390, 1), tls_port = TEST_PORT(390, 2);
    cr_assert(backend_start(&alpha, "tls", tls_port, NULL, NULL));
    cr_assert(backend_start(&bravo, "SSH-2.0-test", ssh_port, NULL, NULL));
    char *routed = text_format("[global]\nworkers = 2\n[listen]\naddress = 127.0.0.1:%u\n"
                               "[routes]\ndefault = 127.0.0.1:%u\n", port, tls_port);
    cr_assert(proxy_start(&relisten_proxy, routed, port));
    struct hello_bytes hello = hello_load_capture(HELLO_CHROMIUM);
    cr_expect(answered_by(port, &hello, "tls"), "routed by name before the reload");
    hello_free(&hello);

    char *plain = text_format("[global]\nworkers = 2\n[listen]\naddress = 127.0.0.1:%u\nupstream = 127.0.0.1:%u\n",
                              port, ssh_port);
    reload_and_wait(plain, "reloaded");
    for (int i = 0; i < 4; i++) { /* both workers' sockets, whichever takes it */
        int fd = net_connect(port);
        cr_assert_geq(fd, 0);
        long long started = monotonic_ms();
        char banner[14] = "";
        /* 500 ms: well under the 1 s a deferring socket holds a silent client. */
        cr_expect_eq(net_receive_exact(fd, banner, 13, 500), 13, "connection %d: no banner within 500 ms", i);
        cr_expect_str_eq(banner, "SSH-2.0-test\n");
        cr_log_info("connection %d: banner after %lld ms", i, monotonic_ms() - started);
        close(fd);
    }
    cr_expect_eq(proxy_stop(&relisten_proxy, 10000), 0);
    free(plain);
    free(routed);
}
