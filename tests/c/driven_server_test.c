/*
 * driven_server_test: a Sekura server on one thread. It accepts connections, serves each
 * over a caller-driven transport from one poll(2) loop, and answers every exec with
 * "ran: COMMAND" and, for "exit N", exit status N. Every server callback checks that it runs
 * on the loop's thread; at no time does the process have a second thread.
 * tests/c_driven_server.rs runs OpenSSH ssh clients against it.
 *
 *   driven_server_test HOST_KEY USER_KEY
 *
 * Prints "port N" once listening; serves until its stdin ends and every connection has
 * closed, then prints "# served N sessions" and exits with the count of failed checks.
 */
#define _POSIX_C_SOURCE 200809L

#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

#define MAX_CONNS 64

struct conn {
    int fd;
    ssh_transport *t;
    ssh_server_callbacks cb;
    bool started;
    ssh_channel *channel;
    uint32_t exec_channel;
    char command[128];
    bool has_command;
    bool replied;
};

static pthread_t loop_thread;
static ssh_pkey *user_key;
static int callbacks_run;
static int sessions;

static void on_loop_thread(void)
{
    CHECK(pthread_equal(pthread_self(), loop_thread));
    callbacks_run++;
}

static int thread_count(void)
{
    return directory_entries("/proc/self/task");
}

static const char *get_allowed_auths(void *userdata, const ssh_server_auth_params *p)
{
    (void)userdata;
    (void)p;
    on_loop_thread();
    return "publickey";
}

static int check_auth_publickey(void *userdata, const ssh_server_auth_params *p)
{
    (void)userdata;
    on_loop_thread();
    return ssh_pkey_equal(p->key, user_key) ? SSH_AUTH_SUCCESSFUL : SSH_AUTH_FAILED;
}

static int check_channel_request(void *userdata, const ssh_server_open_params *p)
{
    (void)userdata;
    on_loop_thread();
    return strcmp(p->kind, "session") == 0 ? SSH_OPEN_SUCCEEDED
                                           : SSH_OPEN_FAILED_UNKNOWN_CHANNEL_TYPE;
}

static bool check_channel_exec_request(void *userdata, const ssh_server_request_params *p)
{
    struct conn *c = userdata;
    on_loop_thread();
    if (c->has_command || p->command_len >= sizeof c->command)
        return false;
    snprintf(c->command, sizeof c->command, "%s", p->command);
    c->exec_channel = p->channel_id;
    c->has_command = true;
    return true;
}

static bool check_channel_env_request(void *userdata, const ssh_server_request_params *p)
{
    (void)userdata;
    (void)p;
    on_loop_thread();
    return false;
}

static int listen_on_loopback(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 64) != 0)
        return -1;
    socklen_t len = sizeof addr;
    getsockname(fd, (struct sockaddr *)&addr, &len);
    printf("port %d\n", ntohs(addr.sin_port));
    fflush(stdout);
    return fd;
}

static void start(struct conn *c, int fd, const ssh_server_config *server)
{
    memset(c, 0, sizeof *c);
    c->fd = fd;
    c->t = ssh_transport_new_driven(fd);
    CHECK(c->t != NULL);
    CHECK(ssh_transport_set_server_config(c->t, server) == SSH_OK);
    ssh_server_callbacks *cb = &c->cb;
    ssh_server_callbacks_init(cb);
    cb->userdata = c;
    cb->get_allowed_auths = get_allowed_auths;
    cb->check_auth_publickey = check_auth_publickey;
    cb->check_channel_request = check_channel_request;
    cb->check_channel_exec_request = check_channel_exec_request;
    cb->check_channel_env_request = check_channel_env_request;
    CHECK(ssh_transport_start_server(c->t, cb) == SSH_ERR_AGAIN);
}

/* Serves what the connection has ready, without blocking. */
static void serve(struct conn *c)
{
    if (!c->started) {
        int r = ssh_transport_start_server(c->t, &c->cb);
        if (r == SSH_ERR_AGAIN)
            return;
        CHECK(r == SSH_OK);
        c->started = true;
    }
    if (c->channel == NULL) {
        c->channel = ssh_transport_accept(c->t, 0);
        if (c->channel == NULL) {
            CHECK(sekura_last_result() == SSH_ERR_AGAIN || sekura_last_result() == SSH_ERR_CLOSED);
            return;
        }
    }
    if (!c->has_command || c->replied)
        return;
    uint32_t id = 0;
    CHECK(ssh_channel_get_id(c->channel, &id) == SSH_OK && id == c->exec_channel);
    char out[160];
    int len = snprintf(out, sizeof out, "ran: %s\n", c->command);
    /* A short reply fits any window: one send takes it all. */
    CHECK(ssh_channel_send(c->channel, (const uint8_t *)out, (size_t)len) == len);
    int code = 0;
    if (!starts_with(c->command, "exit ") || sscanf(c->command, "exit %d", &code) != 1)
        code = 0;
    CHECK(ssh_channel_send_exit_status(c->channel, (uint32_t)code) == SSH_OK);
    CHECK(ssh_channel_send_eof(c->channel) == SSH_OK);
    CHECK(ssh_channel_close(c->channel) == SSH_OK);
    c->replied = true;
    sessions++;
}

static void finish(struct conn *c)
{
    ssh_channel_free(c->channel);
    ssh_transport_free(c->t);
    close(c->fd);
    c->t = NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s HOST_KEY USER_KEY\n", argv[0]);
        return 2;
    }
    loop_thread = pthread_self();
    ssh_pkey *host_key = ssh_pkey_from_file(argv[1], NULL);
    user_key = ssh_pkey_from_file(argv[2], NULL);
    CHECK(host_key != NULL && user_key != NULL);
    int listener = listen_on_loopback();
    CHECK(listener >= 0);

    /* One configuration, shared by every connection. */
    ssh_server_config *server = ssh_server_config_new();
    CHECK(server != NULL);
    CHECK(ssh_server_config_add_host_key(server, host_key) == SSH_OK);
    CHECK(ssh_server_config_set_auth_limits(server, 3, 30000) == SSH_OK);
    CHECK(ssh_server_config_set_channel_limits(server, 256 * 1024, 16384) == SSH_OK);
    CHECK(ssh_server_config_set_preferred(server, SSH_ALG_KEX, "curve25519-sha256") == SSH_OK);
    CHECK_FAILS(ssh_server_config_set_preferred(server, SSH_ALG_KEX, "no-such-kex"),
                SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_server_config_add_host_key(server, NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_server_config_add_host_key(NULL, host_key), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_server_config_load_moduli(server, "/nonexistent/moduli", NULL), SSH_ERR_IO);
    CHECK_FAILS(ssh_transport_set_server_config(NULL, server), SSH_ERR_INVALID_ARG);

    /* Only a caller-driven transport is processed. */
    int pair[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    ssh_transport *threaded = ssh_transport_new(pair[0]);
    CHECK_FAILS(ssh_transport_process(threaded), SSH_ERR_STATE);
    CHECK_FAILS(ssh_transport_process(NULL), SSH_ERR_INVALID_ARG);
    ssh_transport_free(threaded);
    close(pair[1]);

    static struct conn conns[MAX_CONNS];
    bool accepting = true;
    int max_threads = thread_count(), open = 0;
    while (accepting || open > 0) {
        struct pollfd fds[MAX_CONNS + 2];
        int timeout = -1;
        fds[0] = (struct pollfd){.fd = accepting ? listener : -1, .events = POLLIN};
        fds[1] = (struct pollfd){.fd = accepting ? STDIN_FILENO : -1, .events = POLLIN};
        for (int i = 0; i < MAX_CONNS; i++) {
            struct conn *c = &conns[i];
            int events = c->t != NULL ? ssh_transport_wanted_events(c->t) : 0;
            fds[i + 2] = (struct pollfd){.fd = events > 0 ? c->fd : -1, .events = (short)events};
            int ms = -1;
            if (events > 0 && ssh_transport_next_timeout(c->t, &ms) == SSH_OK && ms >= 0 &&
                (timeout < 0 || ms < timeout))
                timeout = ms;
        }
        if (poll(fds, MAX_CONNS + 2, timeout) < 0)
            break;
        if (fds[1].revents) {
            char byte;
            if (read(STDIN_FILENO, &byte, 1) <= 0)
                accepting = false;
        }
        if (fds[0].revents & POLLIN) {
            int fd = accept(listener, NULL, NULL);
            for (int i = 0; fd >= 0 && i < MAX_CONNS; i++) {
                if (conns[i].t == NULL) {
                    start(&conns[i], fd, server);
                    open++;
                    fd = -1;
                }
            }
            CHECK(fd < 0);
        }
        for (int i = 0; i < MAX_CONNS; i++) {
            struct conn *c = &conns[i];
            if (c->t == NULL)
                continue;
            int r = ssh_transport_process(c->t);
            if (r == SSH_OK)
                serve(c);
            if (ssh_transport_wanted_events(c->t) == 0) {
                CHECK(c->replied);
                finish(c);
                open--;
            }
        }
        int threads = thread_count();
        if (threads > max_threads)
            max_threads = threads;
    }
    printf("# served %d sessions, %d callbacks\n", sessions, callbacks_run);
    CHECK(max_threads == 1);
    CHECK(callbacks_run > 0);
    close(listener);
    ssh_server_config_free(server);
    ssh_pkey_free(host_key);
    ssh_pkey_free(user_key);
    return check_summary();
}
