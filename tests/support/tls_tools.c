/*
 * tls_tools.c - openssl-driven certificate and TLS backends (see tls_tools.h).
 *
 * Owns only the strings it returns.
 */
#include "tls_tools.h"

#include <stdio.h>
#include <stdlib.h>

#include "child_process.h"
#include "integration.h"
#include "net.h"

#define OPENSSL_TIMEOUT_MS 60000
#define SERVER_START_TIMEOUT_MS 10000

bool tls_certificate_create(const char *directory, struct tls_certificate *certificate)
{
    certificate->certificate_path = text_format("%s/certificate.pem", directory);
    certificate->key_path = text_format("%s/key.pem", directory);
    const char *argv[] = {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                          "-subj", "/CN=test", "-days", "1",
                          "-keyout", certificate->key_path,
                          "-out", certificate->certificate_path, NULL};
    char *output = NULL;
    int exit_code = child_run(argv, NULL, NULL, OPENSSL_TIMEOUT_MS, &output);
    if (exit_code != 0)
        fprintf(stderr, "openssl req failed (%d): %s\n", exit_code, output);
    free(output);
    return exit_code == 0;
}

void tls_certificate_free(struct tls_certificate *certificate)
{
    free(certificate->certificate_path);
    free(certificate->key_path);
    certificate->certificate_path = certificate->key_path = NULL;
}

pid_t tls_server_start(const struct tls_certificate *certificate, const char *name, uint16_t port)
{
    char *directory = temp_directory_create("s_server");
    char *id_text = text_format("%s\n", name);
    free(temp_file_write(directory, "id.txt", id_text));
    free(id_text);
    char *accept = text_format("127.0.0.1:%u", port);
    char *log_path = text_format("%s/s_server.log", directory);
    const char *argv[] = {"openssl", "s_server", "-WWW", "-accept", accept,
                          "-cert", certificate->certificate_path,
                          "-key", certificate->key_path, "-quiet", NULL};
    struct child_spawn_options options = {.working_directory = directory,
                                          .stdout_path = log_path, .stderr_path = log_path};
    pid_t pid = child_spawn(argv, &options);
    free(accept);
    free(log_path);
    free(directory);
    if (pid <= 0)
        return -1;
    if (!net_wait_accepting(port, SERVER_START_TIMEOUT_MS)) {
        child_kill(pid);
        return -1;
    }
    return pid;
}
