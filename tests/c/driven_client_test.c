/*
 * driven_client_test: one thread, no library threads. 20 caller-driven transports log in to
 * a private OpenSSH sshd at once and run 5 commands each (100 in all), every call made
 * non-blocking and driven by one poll(2) loop. tests/c_programs.rs runs it.
 *
 *   driven_client_test HOST PORT USER KEY KNOWN_HOSTS
 *
 * KEY is authorized for USER; KNOWN_HOSTS lists the server's host keys.
 */
#define _POSIX_C_SOURCE 200809L

#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define TRANSPORTS 20
#define COMMANDS 5

enum step { START, AUTH, OPEN, EXEC, READ, STATUS, DONE, FAILED };

struct conn {
    int fd;
    ssh_transport *t;
    ssh_channel *channel;
    enum step step;
    int command;
    char expected[64];
    char output[256];
    size_t got;
    int agains;
};

struct config {
    const char *host;
    const char *port;
    const char *user;
    const char *known_hosts;
    ssh_pkey *key;
};

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints = {0}, *found = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &found) != 0)
        return -1;
    int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
    if (fd >= 0 && connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(found);
    return fd;
}

/* Threads of this process. */
static int thread_count(void)
{
    return directory_entries("/proc/self/task");
}

/* Open descriptors of this process (the directory's own one included). */
static int fd_count(void)
{
    return directory_entries("/proc/self/fd");
}

static void fail(struct conn *c, const char *what)
{
    printf("not ok - transport %d: %s (result %d: %s)\n", c->fd, what, sekura_last_result(),
           sekura_last_error());
    failures++;
    c->step = FAILED;
}

/* Runs one call: 1 done, 0 would block (counted), -1 failed. */
static int outcome(struct conn *c, long r, const char *what)
{
    if (r == SSH_ERR_AGAIN) {
        c->agains++;
        return 0;
    }
    if (r < 0) {
        fail(c, what);
        return -1;
    }
    return 1;
}

static int verify_host(struct conn *c, const struct config *cfg)
{
    ssh_pkey *host_key = NULL;
    if (ssh_transport_get_remote_server_key(c->t, &host_key) != SSH_OK)
        return 0;
    int verdict = ssh_knownhosts_check(cfg->known_hosts, cfg->host,
                                       (uint16_t)atoi(cfg->port), host_key);
    ssh_pkey_free(host_key);
    return verdict == SSH_KNOWNHOSTS_MATCH;
}

/* Advances one connection as far as it goes without blocking. */
static void advance(struct conn *c, const struct config *cfg)
{
    for (;;) {
        int r;
        switch (c->step) {
        case START:
            if ((r = outcome(c, ssh_transport_start_client(c->t), "start")) <= 0)
                return;
            if (!verify_host(c, cfg)) {
                fail(c, "host key not in known_hosts");
                return;
            }
            c->step = AUTH;
            break;
        case AUTH:
            r = ssh_transport_auth_publickey(c->t, cfg->user, cfg->key);
            if ((r = outcome(c, r, "auth")) <= 0)
                return;
            c->step = OPEN;
            break;
        case OPEN:
            c->channel = ssh_transport_open_session(c->t);
            if (c->channel == NULL) {
                outcome(c, sekura_last_result(), "open");
                return;
            }
            c->step = EXEC;
            break;
        case EXEC: {
            char command[96];
            snprintf(c->expected, sizeof c->expected, "out-%d-%d\n", c->fd, c->command);
            snprintf(command, sizeof command, "printf 'out-%d-%d\\n'; exit %d", c->fd,
                     c->command, c->command + 3);
            if ((r = outcome(c, ssh_channel_exec(c->channel, command), "exec")) <= 0)
                return;
            c->got = 0;
            c->step = READ;
            break;
        }
        case READ: {
            ssize_t n = ssh_channel_recv(c->channel, (uint8_t *)c->output + c->got,
                                         sizeof c->output - 1 - c->got);
            if ((r = outcome(c, n, "recv")) <= 0)
                return;
            if (n > 0) {
                c->got += (size_t)n;
                break;
            }
            c->output[c->got] = '\0';
            if (strcmp(c->output, c->expected) != 0) {
                printf("# got \"%s\", expected \"%s\"\n", c->output, c->expected);
                fail(c, "command output");
                return;
            }
            c->step = STATUS;
            break;
        }
        case STATUS: {
            int status = -1;
            r = ssh_channel_recv_exit_status(c->channel, &status);
            if ((r = outcome(c, r, "exit status")) <= 0)
                return;
            if (status != c->command + 3) {
                fail(c, "exit status");
                return;
            }
            ssh_channel_free(c->channel);
            c->channel = NULL;
            c->step = ++c->command == COMMANDS ? DONE : OPEN;
            break;
        }
        case DONE:
        case FAILED:
            return;
        }
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s HOST PORT USER KEY KNOWN_HOSTS\n", argv[0]);
        return 2;
    }
    struct config cfg = {argv[1], argv[2], argv[3], argv[5], ssh_pkey_from_file(argv[4], NULL)};
    CHECK(cfg.key != NULL);
    CHECK(thread_count() == 1);
    int fds_before = fd_count();

    /* One configuration for every transport, freed once given: they keep their share. */
    const char *ciphers = "aes128-ctr,aes256-gcm@openssh.com";
    ssh_connection_config *shared = ssh_connection_config_new();
    CHECK(shared != NULL);
    CHECK(ssh_connection_config_set_preferred(shared, SSH_ALG_CIPHER, ciphers) == SSH_OK);
    CHECK(ssh_connection_config_set_keepalive(shared, 30, 3) == SSH_OK);
    CHECK(ssh_connection_config_set_rekey_limits(shared, 0, 3600) == SSH_OK);
    CHECK(ssh_connection_config_set_channel_limits(shared, 256 * 1024, 16 * 1024) == SSH_OK);
    CHECK_FAILS(ssh_connection_config_set_preferred(shared, SSH_ALG_CIPHER, "rot13"),
                SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_connection_config_set_keepalive(NULL, 1, 1), SSH_ERR_INVALID_ARG);

    struct conn conns[TRANSPORTS] = {0};
    for (int i = 0; i < TRANSPORTS; i++) {
        conns[i].fd = connect_to(cfg.host, cfg.port);
        CHECK(conns[i].fd >= 0);
        conns[i].t = ssh_transport_new_driven(conns[i].fd);
        CHECK(conns[i].t != NULL);
        CHECK(ssh_transport_set_connection_config(conns[i].t, shared) == SSH_OK);
    }
    ssh_connection_config_free(shared);
    /* A transport's own setting changes its copy only. */
    CHECK(ssh_transport_set_preferred(conns[0].t, SSH_ALG_CIPHER, "aes256-gcm@openssh.com") == SSH_OK);
    char *names = NULL;
    CHECK(ssh_transport_get_preferred(conns[1].t, SSH_ALG_CIPHER, &names) == SSH_OK);
    CHECK(names != NULL && strcmp(names, ciphers) == 0);
    sekura_string_free(names);
    for (int i = 0; i < TRANSPORTS; i++)
        advance(&conns[i], &cfg);
    CHECK_FAILS(ssh_transport_process(NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_wanted_events(NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_next_timeout(conns[0].t, NULL), SSH_ERR_INVALID_ARG);
    CHECK_NULL(ssh_transport_new_driven(-1), SSH_ERR_INVALID_ARG);

    int max_threads = thread_count();
    int commands = 0, rounds = 0;
    double deadline = now() + 60;
    for (;;) {
        struct pollfd fds[TRANSPORTS];
        int active = 0, timeout = -1;
        for (int i = 0; i < TRANSPORTS; i++) {
            struct conn *c = &conns[i];
            int events = c->step >= DONE ? 0 : ssh_transport_wanted_events(c->t);
            fds[i] = (struct pollfd){.fd = events > 0 ? c->fd : -1, .events = (short)events};
            int ms = -1;
            if (events > 0 && ssh_transport_next_timeout(c->t, &ms) == SSH_OK && ms >= 0 &&
                (timeout < 0 || ms < timeout))
                timeout = ms;
            active += events > 0;
        }
        if (active == 0 || now() > deadline)
            break;
        int left = (int)((deadline - now()) * 1000) + 1;
        poll(fds, TRANSPORTS, timeout < 0 || timeout > left ? left : timeout);
        rounds++;
        for (int i = 0; i < TRANSPORTS; i++) {
            struct conn *c = &conns[i];
            if (fds[i].fd < 0)
                continue;
            if (ssh_transport_process(c->t) != SSH_OK) {
                fail(c, "process");
                continue;
            }
            int before = c->command;
            advance(c, &cfg);
            commands += c->command - before;
        }
        int threads = thread_count();
        if (threads > max_threads)
            max_threads = threads;
    }

    int done = 0, agains = 0;
    for (int i = 0; i < TRANSPORTS; i++) {
        done += conns[i].step == DONE;
        agains += conns[i].agains;
    }
    printf("# %d commands in %d poll rounds, %d calls returned SSH_ERR_AGAIN\n", commands,
           rounds, agains);
    CHECK(done == TRANSPORTS);
    /* Each transport holds its socket and our duplicate of it: no wake-up pipe. */
    int fds_used = fd_count() - fds_before;
    printf("# %d descriptors for %d transports\n", fds_used, TRANSPORTS);
    CHECK(fds_used <= 2 * TRANSPORTS);
    CHECK(commands == TRANSPORTS * COMMANDS);
    CHECK(agains > 0);
    /* No library thread ran at any time. */
    CHECK(max_threads == 1);

    /* A would-be-blocking call returns at once, and a repeat of another call is refused
     * while one is in flight. */
    ssh_channel *pending = ssh_transport_open_session(conns[0].t);
    CHECK(pending == NULL && sekura_last_result() == SSH_ERR_AGAIN);
    CHECK(starts_with(sekura_last_error(), "waiting for"));
    CHECK_FAILS(ssh_transport_renegotiate_keys(conns[0].t), SSH_ERR_STATE);
    int result = SSH_ERR_AGAIN;
    while (pending == NULL && result == SSH_ERR_AGAIN && now() < deadline) {
        struct pollfd p = {.fd = conns[0].fd,
                           .events = (short)ssh_transport_wanted_events(conns[0].t)};
        poll(&p, 1, 1000);
        CHECK(ssh_transport_process(conns[0].t) == SSH_OK);
        pending = ssh_transport_open_session(conns[0].t);
        result = sekura_last_result();
    }
    CHECK(pending != NULL);
    ssh_channel_free(pending);

    for (int i = 0; i < TRANSPORTS; i++) {
        double start = now();
        ssh_transport_free(conns[i].t);
        /* Freeing never waits. */
        CHECK(now() - start < 0.5);
        close(conns[i].fd);
    }
    ssh_pkey_free(cfg.key);
    return check_summary();
}
