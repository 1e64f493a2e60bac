/*
 * server_test: a Sekura server written in C with ssh_server_callbacks, checked from both
 * ends. It listens on 127.0.0.1 and prints "port N"; its own Sekura client then exercises
 * every server callback and the session functions (pty, shell, subsystem, env, window size,
 * X11, agent, exit status and signal, global requests, several authentication methods and
 * multi-factor), while tests/c_server.rs drives it with OpenSSH's ssh. It serves until its
 * standard input reaches EOF, then checks that every connection's userdata was freed.
 *
 *   server_test HOST_KEY USER_KEY PASSWORD MODULI
 *
 * HOST_KEY is an Ed25519 private key (the server also offers a generated ECDSA key);
 * USER_KEY the private key whose public half is authorized for every user; PASSWORD the one
 * password (password and keyboard-interactive); MODULI a file in /etc/ssh/moduli format.
 *
 * Exec commands the server knows: "hello" (a line to stdout and one to stderr, exit 3),
 * "cat" (echoes stdin), "signal" (dies of TERM), "report" (what the callbacks saw for the
 * channel), "refuse" (refused). User "twofactor" needs publickey then keyboard-interactive,
 * "tworounds" gets two keyboard-interactive rounds, "guest" needs nothing.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static const char *password;
static const char *moduli;
static ssh_pkey *host_key;
static ssh_pkey *ecdsa_host_key;
static ssh_pkey *user_key;

static atomic_int connections_started;
static atomic_int userdata_freed;
static atomic_int subsystem_calls;
static atomic_int forwards_cancelled;

static const char *const BANNER = "Welcome to server_test\n";
static const char *const ALL_METHODS = "publickey,password,keyboard-interactive";

/* ---- the server: per-connection state ------------------------------------------------- */

#define MAX_CHANNELS 16
#define MAX_THREADS 64

/* What the callbacks saw for one channel; matched to accepted channels by id. */
struct request {
    int used;
    uint32_t id;
    char start[16]; /* "exec", "shell" or "subsystem" once the client started something */
    char arg[256];  /* the command or subsystem name */
    char term[64];
    uint32_t cols, rows, win_cols, win_rows;
    char env[128];
    char x11[64];
    int agent;
};

struct conn {
    ssh_transport *t;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct request requests[MAX_CHANNELS];
    char auth[128]; /* the methods that succeeded, joined by '+' */
    int kbd_round;
};

/* The entry for channel id, made on first use. Call with the lock held. */
static struct request *request_for(struct conn *c, uint32_t id)
{
    struct request *free_slot = NULL;
    for (int i = 0; i < MAX_CHANNELS; i++) {
        if (c->requests[i].used && c->requests[i].id == id)
            return &c->requests[i];
        if (!c->requests[i].used && free_slot == NULL)
            free_slot = &c->requests[i];
    }
    if (free_slot != NULL) {
        memset(free_slot, 0, sizeof *free_slot);
        free_slot->used = 1;
        free_slot->id = id;
    }
    return free_slot;
}

static void add_auth(struct conn *c, const char *method)
{
    pthread_mutex_lock(&c->lock);
    if (c->auth[0] != '\0')
        strncat(c->auth, "+", sizeof c->auth - strlen(c->auth) - 1);
    strncat(c->auth, method, sizeof c->auth - strlen(c->auth) - 1);
    pthread_mutex_unlock(&c->lock);
}

static int auth_done(struct conn *c, const char *method)
{
    pthread_mutex_lock(&c->lock);
    int done = strstr(c->auth, method) != NULL;
    pthread_mutex_unlock(&c->lock);
    return done;
}

static void free_conn(void *userdata)
{
    struct conn *c = userdata;
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->changed);
    free(c);
    userdata_freed++;
}

/* ---- the server: callbacks ------------------------------------------------------------- */

static const char *get_allowed_auths(void *userdata, const ssh_server_auth_params *p)
{
    CHECK(p->username != NULL && p->password == NULL && p->key == NULL);
    if (strcmp(p->username, "twofactor") == 0 && auth_done(userdata, "publickey"))
        return "keyboard-interactive";
    return ALL_METHODS;
}

static int check_auth_none(void *userdata, const ssh_server_auth_params *p)
{
    (void)userdata;
    return strcmp(p->username, "guest") == 0 ? SSH_AUTH_SUCCESSFUL : SSH_AUTH_FAILED;
}

static int check_auth_password(void *userdata, const ssh_server_auth_params *p)
{
    if (strcmp(p->username, "twofactor") == 0 || strcmp(p->password, password) != 0)
        return SSH_AUTH_FAILED;
    add_auth(userdata, "password");
    return SSH_AUTH_SUCCESSFUL;
}

static int check_auth_publickey(void *userdata, const ssh_server_auth_params *p)
{
    CHECK(p->key != NULL && p->password == NULL);
    if (!ssh_pkey_equal(p->key, user_key))
        return SSH_AUTH_FAILED;
    if (!p->signature_verified)
        return SSH_AUTH_SUCCESSFUL; /* only "this key would do": nobody is logged in yet */
    add_auth(userdata, "publickey");
    return strcmp(p->username, "twofactor") == 0 ? SSH_AUTH_PARTIALLY_SUCCESSFUL
                                                   : SSH_AUTH_SUCCESSFUL;
}

static int ask_password(ssh_kbdint_query *query)
{
    CHECK(ssh_kbdint_query_set_text(query, "sekura test", "Answer the prompts.") == SSH_OK);
    CHECK(ssh_kbdint_query_add_prompt(query, "Password: ", false) == SSH_OK);
    CHECK_FAILS(ssh_kbdint_query_add_prompt(query, NULL, false), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_kbdint_query_set_text(query, "name", NULL), SSH_ERR_INVALID_ARG);
    return SSH_AUTH_INFO_REQUEST;
}

static int check_auth_interactive(void *userdata, const ssh_server_auth_params *p,
                                  ssh_kbdint_query *query)
{
    struct conn *c = userdata;
    CHECK(p->submethods != NULL);
    if (strcmp(p->username, "twofactor") == 0 && !auth_done(c, "publickey"))
        return SSH_AUTH_FAILED;
    c->kbd_round = 1;
    return ask_password(query);
}

static int check_auth_interactive_response(void *userdata, const ssh_server_auth_params *p,
                                           ssh_kbdint_query *query)
{
    struct conn *c = userdata;
    if (p->answer_count != 1)
        return SSH_AUTH_FAILED;
    if (c->kbd_round == 1) {
        if (strcmp(p->answers[0], password) != 0)
            return SSH_AUTH_FAILED;
        if (strcmp(p->username, "tworounds") == 0) {
            c->kbd_round = 2;
            CHECK(ssh_kbdint_query_add_prompt(query, "Favourite colour: ", true) == SSH_OK);
            return SSH_AUTH_INFO_REQUEST;
        }
    } else if (strcmp(p->answers[0], "blue") != 0) {
        return SSH_AUTH_FAILED;
    }
    add_auth(c, "keyboard-interactive");
    return SSH_AUTH_SUCCESSFUL;
}

static int check_channel_request(void *userdata, const ssh_server_open_params *p)
{
    (void)userdata;
    CHECK(p->host == NULL);
    return strcmp(p->kind, "session") == 0 ? SSH_OPEN_SUCCEEDED
                                           : SSH_OPEN_FAILED_UNKNOWN_CHANNEL_TYPE;
}

static int check_channel_direct_tcpip_request(void *userdata, const ssh_server_open_params *p)
{
    (void)userdata;
    CHECK(strcmp(p->kind, "direct-tcpip") == 0 && p->origin_host != NULL);
    CHECK(strcmp(p->host, "example.invalid") == 0 && p->port == 9);
    return SSH_OPEN_FAILED_CONNECT_FAILED;
}

/* Records that the client started something on a channel and wakes its server thread. */
static bool start(struct conn *c, uint32_t id, const char *what, const char *arg)
{
    pthread_mutex_lock(&c->lock);
    struct request *r = request_for(c, id);
    if (r != NULL) {
        snprintf(r->start, sizeof r->start, "%s", what);
        snprintf(r->arg, sizeof r->arg, "%s", arg);
        pthread_cond_broadcast(&c->changed);
    }
    pthread_mutex_unlock(&c->lock);
    return r != NULL;
}

static bool check_channel_exec_request(void *userdata, const ssh_server_request_params *p)
{
    CHECK(p->command_len == strlen(p->command) && p->name == NULL);
    if (strcmp(p->command, "refuse") == 0)
        return false;
    return start(userdata, p->channel_id, "exec", p->command);
}

static bool check_channel_shell_request(void *userdata, const ssh_server_request_params *p)
{
    CHECK(p->command == NULL && p->name == NULL);
    return start(userdata, p->channel_id, "shell", "");
}

static bool check_channel_subsystem_request(void *userdata, const ssh_server_request_params *p)
{
    CHECK(strcmp(p->name, "upper") != 0); /* that one has its own handler */
    if (strcmp(p->name, "unregistered") != 0)
        return false;
    return start(userdata, p->channel_id, "subsystem", p->name);
}

static bool check_channel_env_request(void *userdata, const ssh_server_request_params *p)
{
    struct conn *c = userdata;
    CHECK(p->value_len == strlen(p->value));
    if (strncmp(p->name, "LC_", 3) != 0)
        return false;
    pthread_mutex_lock(&c->lock);
    struct request *r = request_for(c, p->channel_id);
    if (r != NULL)
        snprintf(r->env, sizeof r->env, "%s=%s", p->name, p->value);
    pthread_mutex_unlock(&c->lock);
    return r != NULL;
}

static bool check_channel_forward_agent_request(void *userdata,
                                                const ssh_server_request_params *p)
{
    struct conn *c = userdata;
    pthread_mutex_lock(&c->lock);
    struct request *r = request_for(c, p->channel_id);
    if (r != NULL)
        r->agent = 1;
    pthread_mutex_unlock(&c->lock);
    return r != NULL;
}

static bool check_channel_pty_request(void *userdata, const ssh_server_pty_params *p)
{
    struct conn *c = userdata;
    CHECK(p->term != NULL && (p->modes_len == 0 || p->modes[p->modes_len - 1] == 0));
    pthread_mutex_lock(&c->lock);
    struct request *r = request_for(c, p->channel_id);
    if (r != NULL) {
        snprintf(r->term, sizeof r->term, "%s", p->term);
        r->cols = p->width_chars;
        r->rows = p->height_rows;
    }
    pthread_mutex_unlock(&c->lock);
    return r != NULL;
}

static bool check_channel_window_change_request(void *userdata, const ssh_server_pty_params *p)
{
    struct conn *c = userdata;
    CHECK(p->term == NULL && p->modes == NULL);
    pthread_mutex_lock(&c->lock);
    struct request *r = request_for(c, p->channel_id);
    if (r != NULL) {
        r->win_cols = p->width_chars;
        r->win_rows = p->height_rows;
    }
    pthread_mutex_unlock(&c->lock);
    return r != NULL;
}

static bool check_channel_x11_request(void *userdata, const ssh_server_x11_params *p)
{
    struct conn *c = userdata;
    pthread_mutex_lock(&c->lock);
    struct request *r = request_for(c, p->channel_id);
    if (r != NULL)
        snprintf(r->x11, sizeof r->x11, "%s:%s:%u", p->auth_protocol, p->auth_cookie,
                 (unsigned)p->screen);
    pthread_mutex_unlock(&c->lock);
    return r != NULL;
}

static bool check_port_forward_request(void *userdata, const ssh_server_global_params *p,
                                       uint32_t *out_port)
{
    (void)userdata;
    CHECK(strcmp(p->name, "tcpip-forward") == 0 && *out_port == p->port);
    if (strcmp(p->address, "127.0.0.1") != 0)
        return false;
    if (p->port == 0)
        *out_port = 40000; /* a real server would bind and report the port it got */
    return true;
}

static void cancel_port_forward_request(void *userdata, const ssh_server_global_params *p)
{
    (void)userdata;
    CHECK(strcmp(p->name, "cancel-tcpip-forward") == 0 && strcmp(p->address, "127.0.0.1") == 0);
    forwards_cancelled++;
}

static bool check_global_request(void *userdata, const ssh_server_global_params *p,
                                 ssh_global_reply *reply)
{
    (void)userdata;
    if (strcmp(p->name, "ping@sekura.example.org") != 0)
        return false;
    CHECK(p->data_len == 4 && memcmp(p->data, "ping", 4) == 0);
    CHECK_FAILS(ssh_global_reply_set(reply, NULL, 1), SSH_ERR_INVALID_ARG);
    CHECK(ssh_global_reply_set(reply, (const uint8_t *)"pong", 4) == SSH_OK);
    return true;
}

static const char *get_banner(void *userdata)
{
    (void)userdata;
    return BANNER;
}

/* ---- the server: serving channels ------------------------------------------------------ */

/* The "upper" subsystem, on a thread of its own: stdin upper-cased to stdout. */
static void serve_upper(void *userdata, ssh_channel *ch, const char *name)
{
    CHECK(userdata == &subsystem_calls && strcmp(name, "upper") == 0);
    subsystem_calls++;
    uint8_t buf[4096];
    ssize_t n;
    while ((n = ssh_channel_recv(ch, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            buf[i] = (uint8_t)toupper(buf[i]);
        CHECK(ssh_channel_sendall(ch, buf, (size_t)n) == SSH_OK);
    }
    CHECK(ssh_channel_send_exit_status(ch, 0) == SSH_OK);
}

static void send_text(ssh_channel *ch, const char *text)
{
    CHECK(ssh_channel_sendall(ch, (const uint8_t *)text, strlen(text)) == SSH_OK);
}

/* Echoes stdin to stdout until EOF. */
static void echo(ssh_channel *ch)
{
    uint8_t buf[4096];
    ssize_t n;
    while ((n = ssh_channel_recv(ch, buf, sizeof buf)) > 0)
        CHECK(ssh_channel_sendall(ch, buf, (size_t)n) == SSH_OK);
    CHECK(n == 0);
}

static void run_exec(struct conn *c, ssh_channel *ch, const struct request *r)
{
    char out[512];
    if (strcmp(r->arg, "hello") == 0) {
        send_text(ch, "hello stdout\n");
        CHECK(ssh_channel_send_stderr(ch, (const uint8_t *)"hello ", 6) == 6);
        CHECK(ssh_channel_sendall_stderr(ch, (const uint8_t *)"stderr\n", 7) == SSH_OK);
        CHECK(ssh_channel_send_exit_status(ch, 3) == SSH_OK);
    } else if (strcmp(r->arg, "cat") == 0) {
        echo(ch);
        CHECK(ssh_channel_send_exit_status(ch, 0) == SSH_OK);
    } else if (strcmp(r->arg, "signal") == 0) {
        CHECK(ssh_channel_send_exit_signal(ch, "TERM", false, NULL) == SSH_OK);
    } else if (strcmp(r->arg, "report") == 0) {
        pthread_mutex_lock(&c->lock);
        snprintf(out, sizeof out, "auth=%s term=%s pty=%ux%u window=%ux%u env=%s x11=%s agent=%d\n",
                 c->auth, r->term, (unsigned)r->cols, (unsigned)r->rows, (unsigned)r->win_cols,
                 (unsigned)r->win_rows, r->env, r->x11, r->agent);
        pthread_mutex_unlock(&c->lock);
        send_text(ch, out);
        CHECK(ssh_channel_send_exit_status(ch, 0) == SSH_OK);
    } else {
        snprintf(out, sizeof out, "server_test: unknown command: %s\n", r->arg);
        CHECK(ssh_channel_sendall_stderr(ch, (const uint8_t *)out, strlen(out)) == SSH_OK);
        CHECK(ssh_channel_send_exit_status(ch, 127) == SSH_OK);
    }
}

struct channel_job {
    struct conn *conn;
    ssh_channel *ch;
};

/* Waits (5 s at most, while the connection lasts) for the client to start something on the
 * channel, and serves it. */
static void *serve_channel(void *arg)
{
    struct channel_job *job = arg;
    struct conn *c = job->conn;
    ssh_channel *ch = job->ch;
    free(job);

    uint32_t id = 0;
    CHECK(ssh_channel_get_id(ch, &id) == SSH_OK);
    CHECK_FAILS(ssh_channel_get_id(ch, NULL), SSH_ERR_INVALID_ARG);
    pthread_mutex_lock(&c->lock);
    struct request *r = request_for(c, id);
    for (int slice = 0; r != NULL && r->start[0] == '\0' && slice < 50; slice++) {
        if (!ssh_transport_is_active(c->t))
            break;
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_nsec += 100 * 1000 * 1000;
        if (deadline.tv_nsec >= 1000 * 1000 * 1000) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000 * 1000 * 1000;
        }
        pthread_cond_timedwait(&c->changed, &c->lock, &deadline);
    }
    struct request copy;
    int started = r != NULL && r->start[0] != '\0';
    if (r != NULL)
        copy = *r;
    pthread_mutex_unlock(&c->lock);

    if (started && strcmp(copy.start, "exec") == 0) {
        run_exec(c, ch, &copy);
    } else if (started) { /* a shell, or the "unregistered" subsystem */
        char line[sizeof copy.start + sizeof copy.arg + 16];
        snprintf(line, sizeof line, "%s%s%s ready\n", copy.start, copy.arg[0] ? " " : "",
                 copy.arg);
        send_text(ch, line);
        echo(ch);
        CHECK(ssh_channel_send_exit_status(ch, 0) == SSH_OK);
    }
    pthread_mutex_lock(&c->lock);
    if (r != NULL)
        r->used = 0; /* before closing, so that a new channel with this id starts afresh */
    pthread_mutex_unlock(&c->lock);
    ssh_channel_close(ch);
    ssh_channel_free(ch);
    return NULL;
}

/* How a listener sets up its connections. */
struct listener {
    int fd;
    int old_struct; /* register a struct_size that ends before check_auth_password */
    pthread_t thread;
};

struct connection_job {
    int fd;
    int old_struct;
};

static void fill_callbacks(ssh_server_callbacks *cb, struct conn *c)
{
    CHECK(ssh_server_callbacks_init(cb) == SSH_OK && cb->struct_size == sizeof *cb);
    cb->userdata = c;
    cb->userdata_free = free_conn;
    cb->get_allowed_auths = get_allowed_auths;
    cb->check_auth_none = check_auth_none;
    cb->check_auth_password = check_auth_password;
    cb->check_auth_publickey = check_auth_publickey;
    cb->check_auth_interactive = check_auth_interactive;
    cb->check_auth_interactive_response = check_auth_interactive_response;
    cb->check_channel_request = check_channel_request;
    cb->check_channel_direct_tcpip_request = check_channel_direct_tcpip_request;
    cb->check_channel_exec_request = check_channel_exec_request;
    cb->check_channel_shell_request = check_channel_shell_request;
    cb->check_channel_subsystem_request = check_channel_subsystem_request;
    cb->check_channel_env_request = check_channel_env_request;
    cb->check_channel_forward_agent_request = check_channel_forward_agent_request;
    cb->check_channel_pty_request = check_channel_pty_request;
    cb->check_channel_window_change_request = check_channel_window_change_request;
    cb->check_channel_x11_request = check_channel_x11_request;
    cb->check_port_forward_request = check_port_forward_request;
    cb->cancel_port_forward_request = cancel_port_forward_request;
    cb->check_global_request = check_global_request;
    cb->get_banner = get_banner;
}

static void *serve_connection(void *arg)
{
    struct connection_job job = *(struct connection_job *)arg;
    free(arg);
    ssh_transport *t = ssh_transport_new(job.fd);
    CHECK(t != NULL);
    CHECK(ssh_transport_add_server_key(t, host_key) == SSH_OK);
    CHECK(ssh_transport_add_server_key(t, ecdsa_host_key) == SSH_OK);
    size_t groups = 0;
    CHECK(ssh_transport_load_server_moduli(t, moduli, &groups) == SSH_OK && groups > 0);
    CHECK(ssh_transport_set_auth_limits(t, 6, 30000) == SSH_OK);
    CHECK(ssh_transport_set_subsystem_handler(t, "upper", serve_upper, &subsystem_calls) ==
          SSH_OK);

    struct conn *c = calloc(1, sizeof *c);
    c->t = t;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->changed, NULL);
    ssh_server_callbacks cb;
    fill_callbacks(&cb, c);
    if (job.old_struct)
        cb.struct_size = offsetof(ssh_server_callbacks, check_auth_password);
    connections_started++;
    /* From here c belongs to the library, which frees it through userdata_free. */
    if (ssh_transport_start_server(t, &cb) != SSH_OK) {
        CHECK(!"ssh_transport_start_server succeeds");
        ssh_transport_free(t);
        return NULL;
    }
    ssh_pkey *used = NULL;
    CHECK(ssh_transport_get_server_key(t, &used) == SSH_OK && ssh_pkey_equal(used, host_key));
    ssh_pkey_free(used);

    pthread_t threads[MAX_THREADS];
    int count = 0;
    ssh_channel *ch;
    while (count < MAX_THREADS && (ch = ssh_transport_accept(t, -1)) != NULL) {
        struct channel_job *cj = malloc(sizeof *cj);
        cj->conn = c;
        cj->ch = ch;
        CHECK(pthread_create(&threads[count++], NULL, serve_channel, cj) == 0);
    }
    CHECK(sekura_last_result() == SSH_ERR_CLOSED);
    for (int i = 0; i < count; i++)
        pthread_join(threads[i], NULL);
    ssh_transport_free(t);
    return NULL;
}

static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t connection_threads[256];
static int connection_count;

static void *listen_loop(void *arg)
{
    struct listener *l = arg;
    for (;;) {
        int fd = accept(l->fd, NULL, NULL);
        if (fd < 0 && errno == EINTR)
            continue;
        if (fd < 0)
            return NULL; /* shut down */
        struct connection_job *job = malloc(sizeof *job);
        job->fd = fd;
        job->old_struct = l->old_struct;
        pthread_mutex_lock(&threads_lock);
        if (connection_count < 256)
            CHECK(pthread_create(&connection_threads[connection_count++], NULL,
                                 serve_connection, job) == 0);
        pthread_mutex_unlock(&threads_lock);
    }
}

/* A listening socket on 127.0.0.1 and a free port, served by a thread; returns the port.
 * Prints nothing: the port is the program's first line of output. */
static uint16_t start_listener(struct listener *l, int old_struct)
{
    struct sockaddr_in addr = {0};
    socklen_t len = sizeof addr;
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    l->fd = socket(AF_INET, SOCK_STREAM, 0);
    l->old_struct = old_struct;
    if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(l->fd, 16) != 0 || getsockname(l->fd, (struct sockaddr *)&addr, &len) != 0 ||
        pthread_create(&l->thread, NULL, listen_loop, l) != 0) {
        perror("server_test: listen");
        exit(100);
    }
    return ntohs(addr.sin_port);
}

static void stop_listener(struct listener *l)
{
    shutdown(l->fd, SHUT_RDWR); /* wakes accept() */
    pthread_join(l->thread, NULL);
    close(l->fd);
}

/* ---- the client side ------------------------------------------------------------------- */

static ssh_transport *connect_to(uint16_t port)
{
    ssh_transport *t = ssh_transport_connect("127.0.0.1", port, 10000);
    CHECK(t != NULL);
    ssh_pkey *seen = NULL;
    CHECK(ssh_transport_start_client(t) == SSH_OK);
    CHECK(ssh_transport_get_remote_server_key(t, &seen) == SSH_OK &&
          ssh_pkey_equal(seen, host_key));
    ssh_pkey_free(seen);
    return t;
}

/* Reads a stream to EOF into buf (NUL-terminated). */
static void read_all(ssh_channel *ch, char *buf, size_t size, bool stderr_stream)
{
    size_t used = 0;
    ssize_t n;
    while (used + 1 < size &&
           (n = stderr_stream ? ssh_channel_recv_stderr(ch, (uint8_t *)buf + used, size - used - 1)
                              : ssh_channel_recv(ch, (uint8_t *)buf + used, size - used - 1)) > 0)
        used += (size_t)n;
    buf[used] = '\0';
}

/* Runs command; its stdout in out, the exit status (or -1) returned. */
static int run(ssh_transport *t, const char *command, char *out, size_t size)
{
    ssh_channel *ch = ssh_transport_open_session(t);
    CHECK(ch != NULL);
    CHECK(ssh_channel_exec(ch, command) == SSH_OK);
    read_all(ch, out, size, false);
    int status = -1;
    if (ssh_channel_recv_exit_status(ch, &status) != SSH_OK)
        status = -1;
    ssh_channel_free(ch);
    return status;
}

static int answer_prompts(void *userdata, const char *name, const char *instruction,
                          size_t num_prompts, const char *const *prompts, const bool *echo,
                          ssh_kbdint_answers *answers)
{
    int *rounds = userdata;
    ++*rounds;
    for (size_t i = 0; i < num_prompts; i++) {
        if (strcmp(prompts[i], "Password: ") == 0) {
            CHECK(!echo[i] && strcmp(name, "sekura test") == 0 &&
                  strcmp(instruction, "Answer the prompts.") == 0);
            CHECK(ssh_kbdint_answers_set(answers, i, password) == SSH_OK);
        } else {
            CHECK(echo[i] && strcmp(prompts[i], "Favourite colour: ") == 0);
            CHECK(ssh_kbdint_answers_set(answers, i, "blue") == SSH_OK);
        }
    }
    return 0;
}

static void test_commands(ssh_transport *t)
{
    char out[1024], err[1024];
    ssh_channel *ch = ssh_transport_open_session(t);
    CHECK(ssh_channel_exec(ch, "hello") == SSH_OK);
    read_all(ch, out, sizeof out, false);
    read_all(ch, err, sizeof err, true);
    int status = -1;
    CHECK(ssh_channel_recv_exit_status(ch, &status) == SSH_OK && status == 3);
    CHECK(strcmp(out, "hello stdout\n") == 0 && strcmp(err, "hello stderr\n") == 0);
    ssh_channel_free(ch);

    ch = ssh_transport_open_session(t);
    CHECK(ssh_channel_exec(ch, "signal") == SSH_OK);
    CHECK_FAILS(ssh_channel_recv_exit_status(ch, &status), SSH_ERR_EXIT_SIGNAL);
    char *signal_name = NULL;
    CHECK(ssh_channel_get_exit_signal(ch, &signal_name) == SSH_OK &&
          strcmp(signal_name, "TERM") == 0);
    sekura_string_free(signal_name);
    ssh_channel_free(ch);

    ch = ssh_transport_open_session(t);
    CHECK(ssh_channel_exec(ch, "cat") == SSH_OK);
    CHECK(ssh_channel_sendall(ch, (const uint8_t *)"through cat\n", 12) == SSH_OK);
    CHECK(ssh_channel_send_eof(ch) == SSH_OK);
    read_all(ch, out, sizeof out, false);
    CHECK(strcmp(out, "through cat\n") == 0);
    ssh_channel_free(ch);

    ch = ssh_transport_open_session(t);
    CHECK_FAILS(ssh_channel_exec(ch, "refuse"), SSH_ERR_REFUSED);
    ssh_channel_free(ch);
}

static void test_session_requests(ssh_transport *t)
{
    static const uint8_t modes[] = {53, 0, 0, 0, 1, 0}; /* ECHO 1, TTY_OP_END */
    char out[1024];
    ssh_channel *ch = ssh_transport_open_session(t);
    uint32_t id = 0;
    CHECK(ssh_channel_get_id(ch, &id) == SSH_OK);
    CHECK(ssh_channel_request_pty(ch, "vt100", 80, 24, 0, 0, modes, sizeof modes) == SSH_OK);
    CHECK(ssh_channel_set_env(ch, "LC_SEKURA", "yes") == SSH_OK);
    CHECK_FAILS(ssh_channel_set_env(ch, "PATH", "/tmp"), SSH_ERR_REFUSED);
    CHECK(ssh_channel_request_x11(ch, false, "MIT-MAGIC-COOKIE-1", "0123abcd", 0) == SSH_OK);
    CHECK(ssh_channel_request_forward_agent(ch) == SSH_OK);
    CHECK(ssh_channel_resize_pty(ch, 100, 40, 0, 0) == SSH_OK);
    CHECK(ssh_channel_exec(ch, "report") == SSH_OK);
    read_all(ch, out, sizeof out, false);
    CHECK(strcmp(out, "auth=publickey term=vt100 pty=80x24 window=100x40 env=LC_SEKURA=yes "
                      "x11=MIT-MAGIC-COOKIE-1:0123abcd:0 agent=1\n") == 0);
    ssh_channel_free(ch);

    ch = ssh_transport_open_session(t);
    CHECK(ssh_channel_invoke_shell(ch) == SSH_OK);
    CHECK(ssh_channel_sendall(ch, (const uint8_t *)"typed\n", 6) == SSH_OK);
    CHECK(ssh_channel_send_eof(ch) == SSH_OK);
    read_all(ch, out, sizeof out, false);
    CHECK(strcmp(out, "shell ready\ntyped\n") == 0);
    ssh_channel_free(ch);

    ch = ssh_transport_open_session(t);
    CHECK(ssh_channel_invoke_subsystem(ch, "upper") == SSH_OK);
    CHECK(ssh_channel_sendall(ch, (const uint8_t *)"shout", 5) == SSH_OK);
    CHECK(ssh_channel_send_eof(ch) == SSH_OK);
    read_all(ch, out, sizeof out, false);
    CHECK(strcmp(out, "SHOUT") == 0);
    ssh_channel_free(ch);

    ch = ssh_transport_open_session(t);
    CHECK(ssh_channel_invoke_subsystem(ch, "unregistered") == SSH_OK);
    CHECK(ssh_channel_send_eof(ch) == SSH_OK);
    read_all(ch, out, sizeof out, false);
    CHECK(strcmp(out, "subsystem unregistered ready\n") == 0);
    ssh_channel_free(ch);

    ch = ssh_transport_open_session(t);
    CHECK_FAILS(ssh_channel_invoke_subsystem(ch, "nonexistent"), SSH_ERR_REFUSED);
    ssh_channel_free(ch);
}

static void test_global_requests(ssh_transport *t)
{
    /* string "127.0.0.1", uint32 0: forward any free port */
    static const uint8_t forward[] = {0,   0,   0,   9,   '1', '2', '7', '.', '0',
                                      '.', '0', '.', '1', 0,   0,   0,   0};
    static const uint8_t bound[] = {0, 0, 0x9c, 0x40}; /* 40000 */
    uint8_t *reply = NULL;
    size_t len = 0;
    CHECK(ssh_transport_global_request(t, "ping@sekura.example.org", (const uint8_t *)"ping", 4,
                                       true, &reply, &len) == SSH_OK);
    CHECK(len == 4 && reply != NULL && memcmp(reply, "pong", 4) == 0);
    sekura_bytes_free(reply, len);
    CHECK_FAILS(ssh_transport_global_request(t, "other@sekura.example.org", NULL, 0, true, NULL,
                                             NULL),
                SSH_ERR_REFUSED);

    reply = NULL;
    CHECK(ssh_transport_global_request(t, "tcpip-forward", forward, sizeof forward, true, &reply,
                                       &len) == SSH_OK);
    CHECK(reply != NULL && len == 4 && memcmp(reply, bound, 4) == 0);
    sekura_bytes_free(reply, len);
    uint8_t cancel[sizeof forward];
    memcpy(cancel, forward, sizeof forward);
    memcpy(cancel + sizeof forward - 4, bound, 4);
    CHECK(ssh_transport_global_request(t, "cancel-tcpip-forward", cancel, sizeof cancel, true,
                                       NULL, NULL) == SSH_OK);
    CHECK(forwards_cancelled == 1);
}

static void test_publickey_session(uint16_t port)
{
    ssh_transport *t = connect_to(port);
    CHECK(ssh_transport_auth_publickey(t, "alice", user_key) == SSH_OK);
    char *banner = NULL;
    CHECK(ssh_transport_get_banner(t, &banner) == SSH_OK && strcmp(banner, BANNER) == 0);
    sekura_string_free(banner);
    test_commands(t);
    test_session_requests(t);
    test_global_requests(t);
    ssh_transport_free(t);
}

static void test_other_logins(uint16_t port)
{
    char out[512];
    char *methods = NULL;
    bool partial = true;
    int rounds = 0;

    ssh_transport *t = connect_to(port);
    CHECK_FAILS(ssh_transport_auth_password(t, "alice", "wrong"), SSH_ERR_AUTH_DENIED);
    CHECK(ssh_transport_get_auth_methods(t, &methods, &partial) == SSH_OK &&
          strcmp(methods, ALL_METHODS) == 0 && !partial);
    sekura_string_free(methods);
    CHECK(ssh_transport_auth_password(t, "alice", password) == SSH_OK);
    CHECK(run(t, "report", out, sizeof out) == 0 && starts_with(out, "auth=password "));
    ssh_transport_free(t);

    t = connect_to(port);
    CHECK(ssh_transport_auth_interactive(t, "alice", answer_prompts, &rounds) == SSH_OK);
    CHECK(rounds == 1);
    CHECK(run(t, "report", out, sizeof out) == 0 && starts_with(out, "auth=keyboard-interactive "));
    ssh_transport_free(t);

    t = connect_to(port);
    rounds = 0;
    CHECK(ssh_transport_auth_interactive(t, "tworounds", answer_prompts, &rounds) == SSH_OK);
    CHECK(rounds == 2);
    ssh_transport_free(t);

    /* Multi-factor: the key is a partial success, the password prompt completes it. */
    t = connect_to(port);
    CHECK_FAILS(ssh_transport_auth_publickey(t, "twofactor", user_key), SSH_ERR_AUTH_DENIED);
    CHECK(ssh_transport_get_auth_methods(t, &methods, &partial) == SSH_OK &&
          strcmp(methods, "keyboard-interactive") == 0 && partial);
    sekura_string_free(methods);
    rounds = 0;
    CHECK(ssh_transport_auth_interactive(t, "twofactor", answer_prompts, &rounds) == SSH_OK);
    CHECK(run(t, "report", out, sizeof out) == 0 &&
          starts_with(out, "auth=publickey+keyboard-interactive "));
    ssh_transport_free(t);

    t = connect_to(port);
    CHECK(ssh_transport_auth_none(t, "guest") == SSH_OK && ssh_transport_is_authenticated(t));
    ssh_transport_free(t);
}

/* A struct_size that ends before check_auth_password: the members after it count as NULL. */
static void test_old_struct(uint16_t port)
{
    ssh_transport *t = connect_to(port);
    CHECK_FAILS(ssh_transport_auth_password(t, "guest", password), SSH_ERR_AUTH_DENIED);
    CHECK(ssh_transport_auth_none(t, "guest") == SSH_OK);
    CHECK_NULL(ssh_transport_open_session(t), SSH_ERR_REFUSED);
    ssh_transport_free(t);
}

/* ---- NULL and bad arguments ------------------------------------------------------------ */

static void test_null_server(void)
{
    ssh_pkey *key = (ssh_pkey *)&failures;
    size_t count = 12345;
    ssh_server_callbacks cb;

    CHECK_FAILS(ssh_server_callbacks_init(NULL), SSH_ERR_INVALID_ARG);
    CHECK(ssh_server_callbacks_init(&cb) == SSH_OK && cb.struct_size == sizeof cb &&
          cb.userdata == NULL && cb.check_auth_password == NULL && cb.get_banner == NULL);
    CHECK_FAILS(ssh_transport_add_server_key(NULL, host_key), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_get_server_key(NULL, &key), SSH_ERR_INVALID_ARG);
    CHECK(key == (ssh_pkey *)&failures);
    CHECK_FAILS(ssh_transport_load_server_moduli(NULL, moduli, &count), SSH_ERR_INVALID_ARG);
    CHECK(count == 12345);
    CHECK_FAILS(ssh_transport_set_auth_limits(NULL, 6, 1000), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_set_subsystem_handler(NULL, "upper", serve_upper, NULL),
                SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_start_server(NULL, &cb), SSH_ERR_INVALID_ARG);
    CHECK_NULL(ssh_transport_accept(NULL, 0), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_kbdint_query_set_text(NULL, "name", "instructions"), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_kbdint_query_add_prompt(NULL, "Password: ", false), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_global_reply_set(NULL, (const uint8_t *)"x", 1), SSH_ERR_INVALID_ARG);

    /* A transport that never starts: the argument checks come first. */
    int fds[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    ssh_transport *t = ssh_transport_new(fds[0]);
    char *text = ssh_pkey_get_public_string(host_key);
    ssh_pkey *public_only = ssh_pkey_from_public_string(text);
    sekura_string_free(text);
    CHECK_FAILS(ssh_transport_add_server_key(t, public_only), SSH_ERR_INVALID_ARG);
    CHECK(strstr(sekura_last_error(), "private") != NULL);
    ssh_pkey_free(public_only);
    CHECK_FAILS(ssh_transport_add_server_key(t, NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_get_server_key(t, NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_load_server_moduli(t, NULL, NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_load_server_moduli(t, "/nonexistent/moduli", NULL), SSH_ERR_IO);
    CHECK_FAILS(ssh_transport_set_subsystem_handler(t, NULL, serve_upper, NULL),
                SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_set_subsystem_handler(t, "upper", NULL, NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_start_server(t, NULL), SSH_ERR_INVALID_ARG);
    cb.struct_size = 0;
    CHECK_FAILS(ssh_transport_start_server(t, &cb), SSH_ERR_INVALID_ARG);
    CHECK(strstr(sekura_last_error(), "struct_size") != NULL);
    ssh_transport_free(t);
    close(fds[1]);
}

static void test_null_session(void)
{
    static const uint8_t data[] = "data";
    uint32_t id = 12345;

    CHECK_FAILS(ssh_channel_get_id(NULL, &id), SSH_ERR_INVALID_ARG);
    CHECK(id == 12345);
    CHECK_FAILS(ssh_channel_send_stderr(NULL, data, 4), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_channel_sendall_stderr(NULL, data, 4), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_channel_send_exit_status(NULL, 0), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_channel_send_exit_signal(NULL, "TERM", false, NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_channel_request_pty(NULL, "vt100", 80, 24, 0, 0, NULL, 0),
                SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_channel_invoke_shell(NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_channel_invoke_subsystem(NULL, "sftp"), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_channel_set_env(NULL, "LANG", "C"), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_channel_resize_pty(NULL, 80, 24, 0, 0), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_channel_request_x11(NULL, false, "MIT-MAGIC-COOKIE-1", "00", 0),
                SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_channel_request_forward_agent(NULL), SSH_ERR_INVALID_ARG);
}

/* NULL strings on a live channel (of a guest login to the server). */
static void test_null_session_strings(uint16_t port)
{
    ssh_transport *t = connect_to(port);
    CHECK(ssh_transport_auth_none(t, "guest") == SSH_OK);
    ssh_channel *ch = ssh_transport_open_session(t);
    CHECK_FAILS(ssh_channel_send_stderr(ch, NULL, 1), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_channel_send_exit_signal(ch, NULL, false, NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_channel_request_pty(ch, NULL, 80, 24, 0, 0, NULL, 0), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_channel_request_pty(ch, "vt100", 80, 24, 0, 0, NULL, 1), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_channel_invoke_subsystem(ch, NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_channel_set_env(ch, "LANG", NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_channel_request_x11(ch, false, NULL, "00", 0), SSH_ERR_INVALID_ARG);
    ssh_channel_free(ch);
    ssh_transport_free(t);
}

/* ---- main ------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: server_test HOST_KEY USER_KEY PASSWORD MODULI\n");
        return 100;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    host_key = ssh_pkey_from_file(argv[1], NULL);
    user_key = ssh_pkey_from_file(argv[2], NULL);
    password = argv[3];
    moduli = argv[4];
    ecdsa_host_key = ssh_pkey_generate("ecdsa", 256);
    if (host_key == NULL || user_key == NULL || ecdsa_host_key == NULL) {
        fprintf(stderr, "server_test: %s\n", sekura_last_error());
        return 100;
    }

    struct listener main_listener, old_listener;
    uint16_t port = start_listener(&main_listener, 0);
    uint16_t old_port = start_listener(&old_listener, 1);
    printf("port %u\n", (unsigned)port);

    test_null_server();
    test_null_session();
    test_null_session_strings(port);
    test_publickey_session(port);
    test_other_logins(port);
    test_old_struct(old_port);
    CHECK(subsystem_calls == 1);

    /* Serve the OpenSSH clients of tests/c_server.rs until it closes our stdin. */
    char buf[64];
    while (fread(buf, 1, sizeof buf, stdin) > 0)
        ;
    stop_listener(&main_listener);
    stop_listener(&old_listener);
    pthread_mutex_lock(&threads_lock);
    for (int i = 0; i < connection_count; i++)
        pthread_join(connection_threads[i], NULL);
    pthread_mutex_unlock(&threads_lock);

    /* userdata_free runs once each transport's thread has let go of the callbacks. */
    for (int i = 0; i < 500 && userdata_freed != connections_started; i++)
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    CHECK(connections_started > 0 && userdata_freed == connections_started);
    printf("connections %d\n", (int)connections_started);

    ssh_pkey_free(host_key);
    ssh_pkey_free(ecdsa_host_key);
    ssh_pkey_free(user_key);
    return check_summary();
}
