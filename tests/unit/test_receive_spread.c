/*
 * test_receive_spread.c - when connections may be steered by receiving CPU:
 * loopback addresses always; otherwise only if every network device spreads
 * its packets over the workers' CPUs (a fake /sys/class/net in a temp dir).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/address.h"
#include "../../io/listener.h"

static char sysfs[64];

static void make_sysfs(void)
{
    snprintf(sysfs, sizeof sysfs, "/tmp/snisplice-sysfs-XXXXXX");
    cr_assert_not_null(mkdtemp(sysfs));
}

static void remove_sysfs(void)
{
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", sysfs);
    cr_expect_eq(system(command), 0);
}

static void write_text(const char *path, const char *text)
{
    FILE *file = fopen(path, "w");
    cr_assert_not_null(file, "%s", path);
    fputs(text, file);
    fclose(file);
}

/* An interface with `queues` receive queues; rps is rx-0's rps_cpus mask. */
static void add_interface(const char *name, bool physical, const char *operstate, unsigned queues,
                          const char *rps)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", sysfs, name);
    cr_assert_eq(mkdir(path, 0755), 0);
    if (physical) {
        snprintf(path, sizeof path, "%s/%s/device", sysfs, name);
        cr_assert_eq(mkdir(path, 0755), 0);
    }
    snprintf(path, sizeof path, "%s/%s/operstate", sysfs, name);
    write_text(path, operstate);
    snprintf(path, sizeof path, "%s/%s/queues", sysfs, name);
    cr_assert_eq(mkdir(path, 0755), 0);
    for (unsigned i = 0; i < queues; i++) {
        snprintf(path, sizeof path, "%s/%s/queues/rx-%u", sysfs, name, i);
        cr_assert_eq(mkdir(path, 0755), 0);
        snprintf(path, sizeof path, "%s/%s/queues/rx-%u/rps_cpus", sysfs, name, i);
        write_text(path, i == 0 ? rps : "00000000\n");
        snprintf(path, sizeof path, "%s/%s/queues/tx-%u", sysfs, name, i);
        cr_assert_eq(mkdir(path, 0755), 0);
    }
}

TestSuite(receive_spread, .init = make_sysfs, .fini = remove_sysfs);

Test(receive_spread, single_queue_nic_without_rps_is_not_spread)
{
    add_interface("lo", false, "unknown\n", 1, "0\n");
    add_interface("eth0", true, "up\n", 1, "00000000\n");
    cr_expect_not(listener_nics_spread_over(sysfs, 2), "one queue, no RPS, 2 workers");
    cr_expect(listener_nics_spread_over(sysfs, 1), "one worker needs one queue");
}

Test(receive_spread, a_queue_per_worker_or_rps_is_spread)
{
    add_interface("eth0", true, "up\n", 4, "0\n");
    add_interface("eth1", true, "up\n", 1, "00000000,0000000f\n");
    cr_expect(listener_nics_spread_over(sysfs, 4));
    cr_expect_not(listener_nics_spread_over(sysfs, 8), "eth0 has 4 queues for 8 workers");
}

Test(receive_spread, virtual_and_down_devices_do_not_count)
{
    add_interface("eth0", true, "up\n", 2, "0\n");
    add_interface("docker0", false, "up\n", 1, "0\n");
    add_interface("veth1a2b", false, "up\n", 1, "0\n");
    add_interface("eth1", true, "down\n", 1, "0\n");
    cr_expect(listener_nics_spread_over(sysfs, 2));
}

Test(receive_spread, no_sysfs_means_no_steering)
{
    cr_expect_not(listener_nics_spread_over("/nonexistent/sys/class/net", 2));
}

static bool loopback(const char *text)
{
    struct address address;
    char error[128];
    cr_assert(address_parse(text, &address, error, sizeof error), "%s: %s", text, error);
    return address_is_loopback(&address);
}

Test(receive_spread, loopback_addresses)
{
    cr_expect(loopback("127.0.0.1:443"));
    cr_expect(loopback("127.1.2.3:443"));
    cr_expect(loopback("[::1]:443"));
    cr_expect(loopback("[::ffff:127.0.0.1]:443"));
    cr_expect_not(loopback("0.0.0.0:443"));
    cr_expect_not(loopback("[::]:443"));
    cr_expect_not(loopback("10.0.0.1:443"));
    cr_expect_not(loopback("128.0.0.1:443"));
}
