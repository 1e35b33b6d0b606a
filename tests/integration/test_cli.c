/*
 * test_cli.c - the command line as operators use it: `-t` checks a config
 * (exit 0 when fine, exit 1 with FILE:LINE: lines when not), `-V` prints a
 * version, `-h` prints usage, an unknown option exits 2 with usage, and a
 * bad config at startup is refused. Ports: block 17 (never bound).
 */
#include <criterion/criterion.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../support/integration.h"

static void cli_fini(void)
{
    integration_cleanup();
}

static int run_snisplice(const char *first, const char *second, const char *third,
                         char **output)
{
    const char *argv[] = {proxy_binary(), first, second, third, NULL};
    return child_run(argv, NULL, NULL, 15000, output);
}

static char *good_config(void)
{
    char *body = text_format("[routes]\nmatrix.exceptionerror.io = matrix\n"
                             "*.example.com = 127.0.0.1:%u\ndefault = matrix\n"
                             "[upstream matrix]\nserver = 127.0.0.1:%u\n"
                             "server = 127.0.0.1:%u backup\n",
                             TEST_PORT(17, 1), TEST_PORT(17, 2), TEST_PORT(17, 3));
    char *config = config_text(TEST_PORT(17, 0),
                               "max_connections = 100\npreread_timeout = 5s\npreread_max = 16k\n"
                               "connect_timeout = 500ms\nidle_timeout = 10m\ndrain_timeout = 30s\n",
                               body);
    free(body);
    return config;
}

/* Errors on lines 3, 5 and 7. */
static const char bad_config[] = "[global]\n"
                                 "workers = 2\n"
                                 "preread_timeout = banana\n"
                                 "[listen]\n"
                                 "address = 127.0.0.1:notaport\n"
                                 "[routes]\n"
                                 "matrix.exceptionerror.io = no_such_upstream\n"
                                 "default = 127.0.0.1:21341\n";

Test(cli, check_accepts_a_good_config, .init = integration_init, .fini = cli_fini)
{
    char *directory = temp_directory_create("cli");
    char *config = good_config();
    char *path = temp_file_write(directory, "good.ini", config);
    char *output = NULL;
    int status = run_snisplice("-t", "-c", path, &output);
    cr_expect_eq(status, 0, "-t on a good config: exit %d, output:\n%s", status, output);
    free(output);
    free(path);
    free(config);
    free(directory);
}

Test(cli, check_reports_every_bad_line, .init = integration_init, .fini = cli_fini)
{
    char *directory = temp_directory_create("cli");
    char *path = temp_file_write(directory, "bad.ini", bad_config);
    char *output = NULL;
    int status = run_snisplice("-t", "-c", path, &output);
    cr_expect_eq(status, 1, "-t on a bad config: exit %d, output:\n%s", status, output);
    const int bad_lines[] = {3, 5, 7};
    for (size_t i = 0; i < sizeof bad_lines / sizeof bad_lines[0]; i++) {
        char *location = text_format("%s:%d: ", path, bad_lines[i]);
        cr_expect(strstr(output, location) != NULL, "no \"%s\" line in:\n%s", location, output);
        free(location);
    }
    free(output);

    char *missing = text_format("%s/does-not-exist.ini", directory);
    status = run_snisplice("-t", "-c", missing, &output);
    cr_expect_eq(status, 1, "-t on a missing file: exit %d, output:\n%s", status, output);
    free(output);
    free(missing);
    free(path);
    free(directory);
}

/* -t says "valid" only if start-up would not refuse the file: an unknown
 * user or an access log that cannot be opened fail it, as they fail a
 * start (they used to pass -t, and a unit's ExecStartPre with them). */
Test(cli, check_refuses_what_startup_refuses, .init = integration_init, .fini = cli_fini)
{
    char *directory = temp_directory_create("cli");
    const char *const globals[] = { "user = no-such-user-here\n", "access_log = /nonexistent/dir/access.log\n" };
    const char *const said[] = { "user 'no-such-user-here': no such user",
                                 "access_log /nonexistent/dir/access.log: No such file or directory" };
    for (int i = 0; i < 2; i++) {
        char *config = config_text(TEST_PORT(17, 0), globals[i], "[routes]\ndefault = 127.0.0.1:21341\n");
        char *path = temp_file_write(directory, "startup.ini", config);
        char *output = NULL;
        int status = run_snisplice("-t", "-c", path, &output);
        cr_expect_eq(status, 1, "-t with %s: exit %d, output:\n%s", globals[i], status, output);
        cr_expect(output && strstr(output, said[i]) != NULL, "no \"%s\" in:\n%s", said[i], output);
        free(output);
        free(path);
        free(config);
    }
    free(directory);
}

/* What -t and start-up refuse beyond the INI itself names its line too,
 * as the README's "FILE:LINE: problem" promises: an unknown user and an
 * access log that cannot be opened used to say "FILE: problem", leaving
 * the operator to find the key. Ports: block 210 (never bound). */
Test(cli, refusals_beyond_the_ini_name_their_line, .init = integration_init, .fini = cli_fini)
{
    char *directory = temp_directory_create("cli");
    const char *const globals[] = { "drain_timeout = 5s\nuser = no-such-user-here\n",
                                    "drain_timeout = 5s\naccess_log = /nonexistent/dir/access.log\n" };
    const char *const said[] = { "line.ini:4: user 'no-such-user-here': no such user",
                                 "line.ini:4: access_log /nonexistent/dir/access.log: No such file or directory" };
    for (int i = 0; i < 2; i++) {
        char *config = config_text(TEST_PORT(210, 0), globals[i], "[routes]\ndefault = 127.0.0.1:21341\n");
        char *path = temp_file_write(directory, "line.ini", config);
        char *output = NULL;
        int status = run_snisplice("-t", "-c", path, &output);
        cr_expect_eq(status, 1, "-t with %s: exit %d, output:\n%s", globals[i], status, output);
        cr_expect(output && strstr(output, said[i]) != NULL, "-t: no \"%s\" in:\n%s", said[i], output);
        free(output);
        output = NULL;
        status = run_snisplice("-c", path, NULL, &output);
        cr_expect(status != 0 && status != CHILD_TIMED_OUT, "start with %s: exit %d, output:\n%s", globals[i], status,
                  output);
        cr_expect(output && strstr(output, said[i]) != NULL, "start: no \"%s\" in:\n%s", said[i], output);
        free(output);
        free(path);
        free(config);
    }
    free(directory);
}

Test(cli, bad_config_at_startup_is_refused, .init = integration_init, .fini = cli_fini)
{
    char *directory = temp_directory_create("cli");
    char *path = temp_file_write(directory, "bad.ini", bad_config);
    char *output = NULL;
    int status = run_snisplice("-c", path, NULL, &output);
    char *location = text_format("%s:3: ", path);
    cr_expect(status != 0 && status != CHILD_TIMED_OUT,
              "starting with a bad config: exit %d (want a prompt failure), output:\n%s", status,
              output);
    cr_expect(strstr(output, location) != NULL, "no \"%s\" line in:\n%s", location, output);
    free(location);
    free(output);
    free(path);
    free(directory);
}

Test(cli, version_help_and_unknown_option, .init = integration_init, .fini = cli_fini)
{
    char *output = NULL;
    int status = run_snisplice("-V", NULL, NULL, &output);
    regex_t version;
    cr_assert_eq(regcomp(&version, "[0-9]+\\.[0-9]+\\.[0-9]+", REG_EXTENDED | REG_NOSUB), 0);
    cr_expect(status == 0 && regexec(&version, output, 0, NULL, 0) == 0,
              "-V: exit %d, output \"%s\"", status, output);
    regfree(&version);
    free(output);

    status = run_snisplice("-h", NULL, NULL, &output);
    cr_expect(status == 0 && strstr(output, "-c") != NULL, "-h: exit %d, output \"%s\"", status,
              output);
    free(output);

    const char *unknown_options[] = {"-Z", "--no-such-option"};
    for (size_t i = 0; i < 2; i++) {
        status = run_snisplice(unknown_options[i], NULL, NULL, &output);
        cr_expect(status == 2 && strcasestr(output, "usage") != NULL,
                  "%s: exit %d (want 2 and usage), output \"%s\"", unknown_options[i], status,
                  output);
        free(output);
    }
}
