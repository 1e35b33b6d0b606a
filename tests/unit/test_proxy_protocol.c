/*
 * test_proxy_protocol.c - PROXY protocol v1/v2: byte-exact headers for known
 * addresses (the specification's examples), round trips, every kind of
 * refusal, partial input, and the CIDR ranges that decide who may send one.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "../../core/address.h"
#include "../../core/proxy_protocol.h"

static struct sockaddr_storage inet4(const char *text, uint16_t port)
{
    struct sockaddr_storage storage = { 0 };
    struct sockaddr_in *address = (struct sockaddr_in *)&storage;
    address->sin_family = AF_INET;
    address->sin_port = htons(port);
    cr_assert_eq(inet_pton(AF_INET, text, &address->sin_addr), 1);
    return storage;
}

static struct sockaddr_storage inet6(const char *text, uint16_t port)
{
    struct sockaddr_storage storage = { 0 };
    struct sockaddr_in6 *address = (struct sockaddr_in6 *)&storage;
    address->sin6_family = AF_INET6;
    address->sin6_port = htons(port);
    cr_assert_eq(inet_pton(AF_INET6, text, &address->sin6_addr), 1);
    return storage;
}

static size_t encode(enum proxy_protocol_version version, struct sockaddr_storage from,
                     struct sockaddr_storage to, uint8_t *out)
{
    return proxy_protocol_encode(version, (struct sockaddr *)&from, (struct sockaddr *)&to, out,
                                 PROXY_PROTOCOL_ENCODED_MAX);
}

static bool same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return memcmp(&((struct sockaddr_in *)a)->sin_addr, &((struct sockaddr_in *)b)->sin_addr, 4) == 0 &&
               ((struct sockaddr_in *)a)->sin_port == ((struct sockaddr_in *)b)->sin_port;
    return memcmp(&((struct sockaddr_in6 *)a)->sin6_addr, &((struct sockaddr_in6 *)b)->sin6_addr, 16) == 0 &&
           ((struct sockaddr_in6 *)a)->sin6_port == ((struct sockaddr_in6 *)b)->sin6_port;
}

Test(proxy_protocol, v1_text_is_exact)
{
    uint8_t out[PROXY_PROTOCOL_ENCODED_MAX];
    size_t length = encode(PROXY_PROTOCOL_V1, inet4("192.168.0.1", 56324), inet4("192.168.0.11", 443), out);
    const char expected[] = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
    cr_assert_eq(length, strlen(expected));
    cr_expect_arr_eq(out, expected, length);
    length = encode(PROXY_PROTOCOL_V1, inet6("2001:db8::1", 1), inet6("::1", 65535), out);
    const char expected6[] = "PROXY TCP6 2001:db8::1 ::1 1 65535\r\n";
    cr_assert_eq(length, strlen(expected6));
    cr_expect_arr_eq(out, expected6, length);
    /* The longest possible v1 line fits the encoder's buffer and the limit. */
    length = encode(PROXY_PROTOCOL_V1, inet6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535),
                    inet6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535), out);
    cr_expect_eq(length, 104);
    cr_expect_leq(length, PROXY_PROTOCOL_V1_MAX);
}

Test(proxy_protocol, v2_binary_is_exact)
{
    uint8_t out[PROXY_PROTOCOL_ENCODED_MAX];
    size_t length = encode(PROXY_PROTOCOL_V2, inet4("192.0.2.7", 0x1234), inet4("198.51.100.9", 443), out);
    const uint8_t expected[] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
                                 0x21, 0x11, 0x00, 0x0C, 192, 0, 2, 7, 198, 51, 100, 9,
                                 0x12, 0x34, 0x01, 0xBB };
    cr_assert_eq(length, sizeof expected);
    cr_expect_arr_eq(out, expected, length);
    length = encode(PROXY_PROTOCOL_V2, inet6("2001:db8::1", 80), inet6("2001:db8::2", 443), out);
    cr_expect_eq(length, 16 + 36);
    cr_expect_eq(out[13], 0x21, "TCP over IPv6");
    cr_expect_eq(out[15], 36);
}

Test(proxy_protocol, mixed_or_unix_families_say_unknown)
{
    uint8_t out[PROXY_PROTOCOL_ENCODED_MAX];
    struct sockaddr_storage unix_address = { 0 };
    unix_address.ss_family = AF_UNIX;
    size_t length = encode(PROXY_PROTOCOL_V1, unix_address, inet4("127.0.0.1", 1), out);
    cr_expect_eq(length, strlen("PROXY UNKNOWN\r\n"));
    cr_expect_arr_eq(out, "PROXY UNKNOWN\r\n", length);
    length = encode(PROXY_PROTOCOL_V2, inet4("127.0.0.1", 1), inet6("::1", 2), out);
    cr_expect_eq(length, 16);
    cr_expect_eq(out[13], 0x00, "UNSPEC");
    struct proxy_protocol_header header;
    cr_expect_eq(proxy_protocol_parse(out, length, &header), PROXY_PROTOCOL_FOUND);
    cr_expect_not(header.has_addresses);
}

Test(proxy_protocol, round_trips_both_versions_both_families)
{
    struct sockaddr_storage pairs[][2] = {
        { inet4("203.0.113.7", 51234), inet4("192.0.2.1", 443) },
        { inet6("2001:db8::7", 1), inet6("2001:db8::443", 8443) },
    };
    for (int version = PROXY_PROTOCOL_V1; version <= PROXY_PROTOCOL_V2; version++) {
        for (size_t i = 0; i < 2; i++) {
            uint8_t out[PROXY_PROTOCOL_ENCODED_MAX + 8];
            size_t length = encode(version, pairs[i][0], pairs[i][1], out);
            memcpy(out + length, "\x16\x03\x01", 3); /* a hello follows */
            struct proxy_protocol_header header;
            cr_assert_eq(proxy_protocol_parse(out, length + 3, &header), PROXY_PROTOCOL_FOUND);
            cr_expect_eq(header.length, length, "the header ends where the hello starts");
            cr_expect(header.has_addresses);
            cr_expect(same_address(&header.source, &pairs[i][0]), "version %d pair %zu source", version, i);
            cr_expect(same_address(&header.destination, &pairs[i][1]), "version %d pair %zu dest", version, i);
            /* Every strict prefix asks for more. */
            for (size_t cut = 1; cut < length; cut++)
                cr_expect_eq(proxy_protocol_parse(out, cut, &header), PROXY_PROTOCOL_NEED_MORE,
                             "version %d pair %zu cut at %zu", version, i, cut);
        }
    }
}

Test(proxy_protocol, v1_refusals)
{
    const char *const invalid[] = {
        "\x16\x03\x01\x02\x00",                                   /* a ClientHello: no header */
        "GET / HTTP/1.1\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",                        /* LF without CR */
        "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",                        /* a field missing */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",                    /* one too many */
        "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",                     /* double space */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",                     /* trailing space */
        "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",                     /* leading zero */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
        "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
        "PROXY TCP4 ::1 ::1 1 2\r\n",                              /* family mismatch */
        "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 -2\r\n",
        "PROXY \r\n",
        "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        struct proxy_protocol_header header;
        cr_expect_eq(proxy_protocol_parse((const uint8_t *)invalid[i], strlen(invalid[i]), &header),
                     PROXY_PROTOCOL_INVALID, "accepted: %s", invalid[i]);
    }
    /* 107 bytes without a line end: the specification's limit. */
    uint8_t long_line[120];
    memset(long_line, 'a', sizeof long_line);
    memcpy(long_line, "PROXY UNKNOWN ", 14);
    struct proxy_protocol_header header;
    cr_expect_eq(proxy_protocol_parse(long_line, 106, &header), PROXY_PROTOCOL_NEED_MORE);
    cr_expect_eq(proxy_protocol_parse(long_line, 107, &header), PROXY_PROTOCOL_INVALID);
    /* UNKNOWN with addresses after it: valid, addresses ignored. */
    const char unknown[] = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nrest";
    cr_expect_eq(proxy_protocol_parse((const uint8_t *)unknown, strlen(unknown), &header), PROXY_PROTOCOL_FOUND);
    cr_expect_eq(header.length, strlen(unknown) - 4);
    cr_expect_not(header.has_addresses);
}

Test(proxy_protocol, v2_refusals_local_and_tlvs)
{
    uint8_t header_bytes[64];
    size_t length = encode(PROXY_PROTOCOL_V2, inet4("192.0.2.7", 1), inet4("192.0.2.8", 2), header_bytes);
    struct proxy_protocol_header header;
    uint8_t copy[64];

    memcpy(copy, header_bytes, length);
    copy[12] = 0x11; /* version 1 in the binary form */
    cr_expect_eq(proxy_protocol_parse(copy, length, &header), PROXY_PROTOCOL_INVALID);
    memcpy(copy, header_bytes, length);
    copy[12] = 0x22; /* no such command */
    cr_expect_eq(proxy_protocol_parse(copy, length, &header), PROXY_PROTOCOL_INVALID);
    memcpy(copy, header_bytes, length);
    copy[15] = 4; /* TCP4 with a 4-byte address block */
    cr_expect_eq(proxy_protocol_parse(copy, 20, &header), PROXY_PROTOCOL_INVALID);
    memcpy(copy, header_bytes, length);
    copy[13] = 0x41; /* family 4 does not exist */
    cr_expect_eq(proxy_protocol_parse(copy, length, &header), PROXY_PROTOCOL_INVALID);
    memcpy(copy, header_bytes, length);
    copy[5] = 0x0C; /* signature off by one byte */
    cr_expect_eq(proxy_protocol_parse(copy, length, &header), PROXY_PROTOCOL_INVALID);

    /* LOCAL (health checks from the balancer): valid, keep the peer's address. */
    memcpy(copy, header_bytes, length);
    copy[12] = 0x20;
    cr_expect_eq(proxy_protocol_parse(copy, length, &header), PROXY_PROTOCOL_FOUND);
    cr_expect_not(header.has_addresses);
    cr_expect_eq(header.length, length);

    /* TLVs after the addresses are skipped, and counted in the length. */
    memcpy(copy, header_bytes, length);
    copy[15] = 12 + 7;
    memcpy(copy + length, "\x04\x00\x04" "abcd", 7);
    cr_expect_eq(proxy_protocol_parse(copy, length + 6, &header), PROXY_PROTOCOL_NEED_MORE);
    cr_expect_eq(proxy_protocol_parse(copy, length + 7, &header), PROXY_PROTOCOL_FOUND);
    cr_expect_eq(header.length, length + 7);
    cr_expect(header.has_addresses);
}

/* Headers HAProxy 2.6 really sent (captured from a listener), each followed
 * by what came after it on the connection. */
static size_t from_hex(const char *hex, uint8_t *out)
{
    size_t length = strlen(hex) / 2;
    for (size_t i = 0; i < length; i++) {
        unsigned byte;
        cr_assert_eq(sscanf(hex + 2 * i, "%2x", &byte), 1);
        out[i] = (uint8_t)byte;
    }
    return length;
}

Test(proxy_protocol, haproxy_captured_headers)
{
    static const struct {
        const char *what, *hex;
        size_t header_length;
        bool has_addresses;
    } captured[] = {
        { "check, send-proxy-v2: LOCAL", "0d0a0d0a000d0a515549540a20000000", 16, false },
        { "check, send-proxy-v2-ssl: LOCAL with an SSL TLV",
          "0d0a0d0a000d0a515549540a200000082000050000000000", 24, false },
        { "send-proxy-v2 proxy-v2-options unique-id,authority,crc32c,ssl: TCP4 and 3 TLVs",
          "0d0a0d0a000d0a515549540a2111004c7f0000017f000001330a3308030004f92a825605002e3746303030"
          "3030313a333330415f37463030303030313a333330385f36423041314431455f303030303a36303135200005"
          "000000000068656c6c6f",
          92, true },
        { "send-proxy-v2-ssl-cn from an IPv6 client: TCP6 and an SSL TLV",
          "0d0a0d0a000d0a515549540a2121002c0000000000000000000000000000000100000000000000000000000000"
          "000001330b3309200005000000000068656c6c6f",
          60, true },
    };
    for (size_t i = 0; i < sizeof captured / sizeof captured[0]; i++) {
        uint8_t bytes[128];
        size_t length = from_hex(captured[i].hex, bytes);
        struct proxy_protocol_header header;
        cr_expect_eq(proxy_protocol_parse(bytes, length, &header), PROXY_PROTOCOL_FOUND, "%s", captured[i].what);
        cr_expect_eq(header.length, captured[i].header_length, "%s", captured[i].what);
        cr_expect_eq(header.has_addresses, captured[i].has_addresses, "%s", captured[i].what);
        cr_expect_eq(proxy_protocol_parse(bytes, captured[i].header_length - 1, &header),
                     PROXY_PROTOCOL_NEED_MORE, "%s", captured[i].what);
    }
    uint8_t bytes[128];
    struct proxy_protocol_header header;
    size_t length = from_hex(captured[2].hex, bytes);
    cr_assert_eq(proxy_protocol_parse(bytes, length, &header), PROXY_PROTOCOL_FOUND);
    struct sockaddr_storage from = inet4("127.0.0.1", 13066), to = inet4("127.0.0.1", 13064);
    cr_expect(same_address(&header.source, &from));
    cr_expect(same_address(&header.destination, &to));
    length = from_hex(captured[3].hex, bytes);
    cr_assert_eq(proxy_protocol_parse(bytes, length, &header), PROXY_PROTOCOL_FOUND);
    from = inet6("::1", 13067);
    to = inet6("::1", 13065);
    cr_expect(same_address(&header.source, &from));
    cr_expect(same_address(&header.destination, &to));

    /* The v1 line of its checks (send-proxy): the check's own addresses. */
    const char check[] = "PROXY TCP4 127.0.0.1 127.0.0.1 47852 13062\r\n";
    cr_expect_eq(proxy_protocol_parse((const uint8_t *)check, strlen(check), &header), PROXY_PROTOCOL_FOUND);
    cr_expect_eq(header.length, strlen(check));
}

Test(proxy_protocol, address_ranges)
{
    struct address_range range;
    char error[128];
    cr_assert(address_range_parse("10.0.0.0/8", &range, error, sizeof error), "%s", error);
    struct sockaddr_storage inside = inet4("10.200.3.4", 1), outside = inet4("11.0.0.1", 1);
    cr_expect(address_range_contains(&range, (struct sockaddr *)&inside));
    cr_expect_not(address_range_contains(&range, (struct sockaddr *)&outside));
    struct sockaddr_storage v6 = inet6("::ffff:10.0.0.1", 1);
    cr_expect_not(address_range_contains(&range, (struct sockaddr *)&v6), "families never mix");

    cr_assert(address_range_parse("192.168.1.77/20", &range, error, sizeof error));
    struct sockaddr_storage edge_in = inet4("192.168.15.255", 1), edge_out = inet4("192.168.16.0", 1);
    cr_expect(address_range_contains(&range, (struct sockaddr *)&edge_in), "host bits are cleared");
    cr_expect_not(address_range_contains(&range, (struct sockaddr *)&edge_out));

    cr_assert(address_range_parse("127.0.0.1", &range, error, sizeof error));
    struct sockaddr_storage loopback = inet4("127.0.0.1", 9), other = inet4("127.0.0.2", 9);
    cr_expect(address_range_contains(&range, (struct sockaddr *)&loopback), "a bare address is a /32");
    cr_expect_not(address_range_contains(&range, (struct sockaddr *)&other));

    cr_assert(address_range_parse("2001:db8::/33", &range, error, sizeof error));
    struct sockaddr_storage v6_in = inet6("2001:db8:7fff::1", 1), v6_out = inet6("2001:db8:8000::1", 1);
    cr_expect(address_range_contains(&range, (struct sockaddr *)&v6_in));
    cr_expect_not(address_range_contains(&range, (struct sockaddr *)&v6_out));

    cr_assert(address_range_parse("0.0.0.0/0", &range, error, sizeof error));
    cr_expect(address_range_contains(&range, (struct sockaddr *)&outside), "/0 holds everything");

    const char *const bad[] = { "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "example.com", "", "10.0.0/8" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_not(address_range_parse(bad[i], &range, error, sizeof error), "accepted '%s'", bad[i]);
}
