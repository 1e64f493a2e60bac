/*
 * sekura-sshd: a small SSH server, like a non-root OpenSSH sshd(8) in the foreground, using
 * Sekura's server callbacks.
 *
 *   sekura-sshd -p PORT [-a ADDRESS] -h HOST_KEY [-h HOST_KEY]... [-o option]...
 *
 * Listens on ADDRESS (default 127.0.0.1) and serves every client on a thread of its own.
 * Logs to standard error, one line per login ("Accepted publickey for USER from ADDRESS
 * port N ssh2: ED25519 SHA256:..."). Stops on SIGTERM or SIGINT.
 *
 * Only the user running sekura-sshd may log in, as with a sshd started by a normal user.
 * Options, "Key=Value":
 *   AuthorizedKeysFile=FILE   public keys in OpenSSH's authorized_keys format (lines with
 *                             options before the key are skipped, with a warning)
 *   PasswordFile=FILE         "user:password" lines, for password and keyboard-interactive
 *                             authentication (one "Password: " prompt)
 *   SftpServer=PROGRAM        what serves the "sftp" subsystem, for sftp and scp (default
 *                             OpenSSH's /usr/lib/openssh/sftp-server when it is installed;
 *                             "none" refuses the subsystem)
 *   MaxConnections=N          connections served at once (default 1024); more are refused
 *                             with a log line
 *   MaxUnauthenticated=N      connections not yet logged in (default 256); a newcomer beyond
 *                             it closes the oldest of them, so a flood of idle connections
 *                             cannot keep real users out (and none needs a login timeout)
 *
 * Sessions: a command runs as `/bin/sh -c COMMAND`, a shell as the user's login shell, in
 * the user's home directory, with standard input, output and error wired to the channel,
 * and its exit status (or the signal that killed it) reported. With a pty request the
 * session runs on a pseudo-terminal of the requested size, resized on window changes (the
 * encoded terminal modes are not applied). Environment variables sent by the client are
 * accepted for LANG, LANGUAGE, TZ and LC_*; others are refused.
 *
 * Build: cc -std=c11 -pthread sekura-sshd.c $(pkg-config --cflags --libs sekura)
 */
#define _GNU_SOURCE /* posix_openpt and friends, TIOCSCTTY, TIOCSWINSZ */

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sekura.h>

#define PROGRAM "sekura-sshd"
#define MAX_HOST_KEYS 8
#define MAX_AUTHORIZED 256
#define MAX_CHANNELS 32
#define MAX_ENV 16
#define DEFAULT_SFTP_SERVER "/usr/lib/openssh/sftp-server"
#define DEFAULT_MAX_CONNECTIONS 1024
#define DEFAULT_MAX_UNAUTHENTICATED 256
#define KILL_GRACE_MS 3000 /* from SIGHUP to SIGKILL for a session whose client is gone */

/* ---- configuration ----------------------------------------------------------------------- */

static struct {
    const char *address;
    const char *port;
    ssh_pkey *host_keys[MAX_HOST_KEYS];
    int host_key_count;
    ssh_server_config *server; /* the host keys, shared by every connection */
    ssh_pkey *authorized[MAX_AUTHORIZED];
    int authorized_count;
    const char *password_file;
    const char *sftp_server; /* "": no sftp subsystem */
    char allowed_auths[64];
    struct passwd user; /* the one user who may log in */
    int max_connections;
    int max_unauthenticated;
} config;

static volatile sig_atomic_t stop_signal;

static void logmsg(const char *format, ...)
{
    char line[1024];
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof line, format, args);
    va_end(args);
    fprintf(stderr, PROGRAM "[%ld]: %s\n", (long)getpid(), line);
}

static void die(const char *format, const char *arg)
{
    fprintf(stderr, PROGRAM ": ");
    fprintf(stderr, format, arg);
    fprintf(stderr, "\n");
    exit(1);
}

static void usage(void)
{
    fprintf(stderr, "usage: " PROGRAM " -p PORT [-a ADDRESS] -h HOST_KEY... "
                    "[-o AuthorizedKeysFile=FILE] [-o PasswordFile=FILE] "
                    "[-o SftpServer=PROGRAM] [-o MaxConnections=N] "
                    "[-o MaxUnauthenticated=N]\n");
    exit(1);
}

/* Reads an authorized_keys file: one key per line; blank lines and comments skipped. */
static void load_authorized_keys(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        die("cannot open AuthorizedKeysFile %s", path);
    char line[16384];
    int number = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        number++;
        line[strcspn(line, "\r\n")] = '\0';
        const char *start = line + strspn(line, " \t");
        if (*start == '\0' || *start == '#')
            continue;
        ssh_pkey *key = ssh_pkey_from_public_string(start);
        if (key == NULL) {
            logmsg("%s line %d: skipped (key options are not supported): %s", path, number,
                   sekura_last_error());
        } else if (config.authorized_count == MAX_AUTHORIZED) {
            logmsg("%s line %d: skipped (more than %d keys)", path, number, MAX_AUTHORIZED);
            ssh_pkey_free(key);
        } else {
            config.authorized[config.authorized_count++] = key;
        }
    }
    fclose(f);
}

/* Compares without stopping at the first difference, so timing says little. */
static int same_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;
    for (size_t i = 0; i < la && i < lb; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

/* Whether PasswordFile has "user:password". Read at each attempt, like a password database. */
static int password_ok(const char *user, const char *password)
{
    if (config.password_file == NULL)
        return 0;
    FILE *f = fopen(config.password_file, "r");
    if (f == NULL) {
        logmsg("cannot open PasswordFile %s", config.password_file);
        return 0;
    }
    char line[1024];
    int ok = 0;
    size_t user_len = strlen(user);
    while (!ok && fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, user, user_len) == 0 && line[user_len] == ':')
            ok = same_secret(line + user_len + 1, password);
    }
    fclose(f);
    return ok;
}

static int positive_number(const char *text)
{
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || n < 1 || n > 1000000)
        die("not a number from 1 to 1000000: %s", text);
    return (int)n;
}

static void parse_options(int argc, char **argv)
{
    int opt;
    config.address = "127.0.0.1";
    config.max_connections = DEFAULT_MAX_CONNECTIONS;
    config.max_unauthenticated = DEFAULT_MAX_UNAUTHENTICATED;
    config.sftp_server = access(DEFAULT_SFTP_SERVER, X_OK) == 0 ? DEFAULT_SFTP_SERVER : "";
    while ((opt = getopt(argc, argv, "p:a:h:o:")) != -1) {
        switch (opt) {
        case 'p':
            config.port = optarg;
            break;
        case 'a':
            config.address = optarg;
            break;
        case 'h':
            if (config.host_key_count == MAX_HOST_KEYS)
                die("at most %s host keys", "8");
            config.host_keys[config.host_key_count] = ssh_pkey_from_file(optarg, NULL);
            if (config.host_keys[config.host_key_count++] == NULL)
                die("cannot load host key: %s", sekura_last_error());
            break;
        case 'o':
            if (strncmp(optarg, "AuthorizedKeysFile=", 19) == 0)
                load_authorized_keys(optarg + 19);
            else if (strncmp(optarg, "PasswordFile=", 13) == 0)
                config.password_file = optarg + 13;
            else if (strncmp(optarg, "SftpServer=", 11) == 0)
                config.sftp_server = strcmp(optarg + 11, "none") == 0 ? "" : optarg + 11;
            else if (strncmp(optarg, "MaxConnections=", 15) == 0)
                config.max_connections = positive_number(optarg + 15);
            else if (strncmp(optarg, "MaxUnauthenticated=", 19) == 0)
                config.max_unauthenticated = positive_number(optarg + 19);
            else
                die("unknown option %s", optarg);
            break;
        default:
            usage();
        }
    }
    if (optind != argc || config.port == NULL || config.host_key_count == 0)
        usage();
    config.server = ssh_server_config_new();
    for (int i = 0; i < config.host_key_count; i++)
        if (config.server == NULL ||
            ssh_server_config_add_host_key(config.server, config.host_keys[i]) != SSH_OK)
            die("host key: %s", sekura_last_error());
    snprintf(config.allowed_auths, sizeof config.allowed_auths, "%s%s",
             config.authorized_count > 0 ? "publickey," : "",
             config.password_file != NULL ? "password,keyboard-interactive" : "");
    size_t len = strlen(config.allowed_auths);
    if (len > 0 && config.allowed_auths[len - 1] == ',')
        config.allowed_auths[len - 1] = '\0';

    struct passwd *pw = getpwuid(getuid());
    if (pw == NULL)
        die("who am I? %s", strerror(errno));
    config.user = *pw;
    config.user.pw_name = strdup(pw->pw_name);
    config.user.pw_dir = strdup(pw->pw_dir);
    config.user.pw_shell = strdup(pw->pw_shell[0] != '\0' ? pw->pw_shell : "/bin/sh");
}

/* ---- one connection: what the callbacks saw ---------------------------------------------- */

/* A channel's requests, matched to the accepted channel by id. A slot is made when the
 * channel opens (check_channel_request), so a request for any other channel finds none. */
struct session {
    int used;
    uint32_t id;
    int started; /* exec, shell or subsystem accepted: no pty-req, env or second start now */
    char *command; /* NULL for a shell */
    int pty;
    char term[64];
    struct winsize size;
    int master; /* the pty's master side once running, else -1 */
    char *env[MAX_ENV];
    int env_count;
};

struct conn {
    ssh_transport *t;
    char peer[NI_MAXHOST];
    char peer_port[NI_MAXSERV];
    char local[NI_MAXHOST];
    char local_port[NI_MAXSERV];
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct session sessions[MAX_CHANNELS];
    int running; /* channel threads not yet finished */
};

/* The session of channel id, or NULL. Call with the lock held. */
static struct session *session_find(struct conn *c, uint32_t id)
{
    for (int i = 0; i < MAX_CHANNELS; i++)
        if (c->sessions[i].used && c->sessions[i].id == id)
            return &c->sessions[i];
    return NULL;
}

/* A new session for channel id; NULL if MAX_CHANNELS are open. Call with the lock held. */
static struct session *session_new(struct conn *c, uint32_t id)
{
    for (int i = 0; i < MAX_CHANNELS; i++) {
        struct session *slot = &c->sessions[i];
        if (!slot->used) {
            memset(slot, 0, sizeof *slot);
            slot->used = 1;
            slot->id = id;
            slot->master = -1;
            return slot;
        }
    }
    return NULL;
}

/* Frees what a session's fields own (the slot itself or a copy of it). */
static void clear_session(struct session *s)
{
    free(s->command);
    s->command = NULL;
    for (int i = 0; i < s->env_count; i++)
        free(s->env[i]);
    s->env_count = 0;
}

static void release_session(struct conn *c, struct session *s)
{
    pthread_mutex_lock(&c->lock);
    clear_session(s);
    s->used = 0;
    pthread_mutex_unlock(&c->lock);
}

static void free_conn(void *userdata)
{
    struct conn *c = userdata;
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->changed);
    free(c);
}

/* ---- authentication ------------------------------------------------------------------------ */

static const char *get_allowed_auths(void *userdata, const ssh_server_auth_params *p)
{
    (void)userdata;
    (void)p;
    return config.allowed_auths;
}

static int is_our_user(const char *user)
{
    return strcmp(user, config.user.pw_name) == 0;
}

static void log_password(struct conn *c, const char *method, const char *user, int ok)
{
    logmsg("%s %s for %s from %s port %s ssh2", ok ? "Accepted" : "Failed", method, user,
           c->peer, c->peer_port);
}

static int check_auth_password(void *userdata, const ssh_server_auth_params *p)
{
    int ok = is_our_user(p->username) && password_ok(p->username, p->password);
    log_password(userdata, "password", p->username, ok);
    return ok ? SSH_AUTH_SUCCESSFUL : SSH_AUTH_FAILED;
}

static int check_auth_publickey(void *userdata, const ssh_server_auth_params *p)
{
    struct conn *c = userdata;
    int known = 0;
    for (int i = 0; i < config.authorized_count && !known; i++)
        known = ssh_pkey_equal(p->key, config.authorized[i]);
    if (!known || !is_our_user(p->username))
        return SSH_AUTH_FAILED;
    if (p->signature_verified) { /* the client proved it holds the key: log in */
        char *type = ssh_pkey_get_type(p->key);
        char *fingerprint = ssh_pkey_get_fingerprint(p->key);
        logmsg("Accepted publickey for %s from %s port %s ssh2: %s %s", p->username, c->peer,
               c->peer_port, type ? type : "?", fingerprint ? fingerprint : "?");
        sekura_string_free(type);
        sekura_string_free(fingerprint);
    }
    return SSH_AUTH_SUCCESSFUL;
}

static int check_auth_interactive(void *userdata, const ssh_server_auth_params *p,
                                  ssh_kbdint_query *query)
{
    (void)userdata;
    if (config.password_file == NULL)
        return SSH_AUTH_FAILED;
    (void)p;
    ssh_kbdint_query_add_prompt(query, "Password: ", false);
    return SSH_AUTH_INFO_REQUEST;
}

static int check_auth_interactive_response(void *userdata, const ssh_server_auth_params *p,
                                           ssh_kbdint_query *query)
{
    (void)query;
    int ok = p->answer_count == 1 && is_our_user(p->username) &&
             password_ok(p->username, p->answers[0]);
    log_password(userdata, "keyboard-interactive", p->username, ok);
    return ok ? SSH_AUTH_SUCCESSFUL : SSH_AUTH_FAILED;
}

/* ---- channel requests ---------------------------------------------------------------------- */

static int check_channel_request(void *userdata, const ssh_server_open_params *p)
{
    struct conn *c = userdata;
    if (strcmp(p->kind, "session") != 0)
        return SSH_OPEN_FAILED_UNKNOWN_CHANNEL_TYPE;
    pthread_mutex_lock(&c->lock);
    struct session *s = session_find(c, p->channel_id) == NULL ? session_new(c, p->channel_id)
                                                               : NULL;
    pthread_mutex_unlock(&c->lock);
    return s != NULL ? SSH_OPEN_SUCCEEDED : SSH_OPEN_FAILED_RESOURCE_SHORTAGE;
}

/* exec, shell or subsystem: once per channel. */
static bool start_session(struct conn *c, uint32_t id, const char *command)
{
    char *copy = NULL;
    if (command != NULL && (copy = strdup(command)) == NULL)
        return false;
    pthread_mutex_lock(&c->lock);
    struct session *s = session_find(c, id);
    bool ok = s != NULL && !s->started;
    if (ok) {
        s->started = 1;
        s->command = copy;
        copy = NULL;
        pthread_cond_broadcast(&c->changed);
    }
    pthread_mutex_unlock(&c->lock);
    free(copy);
    return ok;
}

static bool check_channel_exec_request(void *userdata, const ssh_server_request_params *p)
{
    if (strlen(p->command) != p->command_len)
        return false; /* a NUL inside: the shell would see another command */
    return start_session(userdata, p->channel_id, p->command);
}

static bool check_channel_shell_request(void *userdata, const ssh_server_request_params *p)
{
    return start_session(userdata, p->channel_id, NULL);
}

/* "sftp" runs the sftp server as the session's command, as sshd's Subsystem line does. */
static bool check_channel_subsystem_request(void *userdata, const ssh_server_request_params *p)
{
    if (strcmp(p->name, "sftp") != 0 || config.sftp_server[0] == '\0')
        return false;
    return start_session(userdata, p->channel_id, config.sftp_server);
}

static void set_size(struct session *s, const ssh_server_pty_params *p)
{
    s->size.ws_col = (unsigned short)p->width_chars;
    s->size.ws_row = (unsigned short)p->height_rows;
    s->size.ws_xpixel = (unsigned short)p->width_pixels;
    s->size.ws_ypixel = (unsigned short)p->height_pixels;
}

/* Only before the session starts: it runs on a pty or on pipes from the start. */
static bool check_channel_pty_request(void *userdata, const ssh_server_pty_params *p)
{
    struct conn *c = userdata;
    pthread_mutex_lock(&c->lock);
    struct session *s = session_find(c, p->channel_id);
    bool ok = s != NULL && !s->started && !s->pty;
    if (ok) {
        s->pty = 1;
        snprintf(s->term, sizeof s->term, "%s", p->term);
        set_size(s, p);
    }
    pthread_mutex_unlock(&c->lock);
    return ok;
}

static bool check_channel_window_change_request(void *userdata, const ssh_server_pty_params *p)
{
    struct conn *c = userdata;
    pthread_mutex_lock(&c->lock);
    struct session *s = session_find(c, p->channel_id);
    bool ok = s != NULL;
    if (ok) {
        set_size(s, p);
        if (s->master >= 0)
            ioctl(s->master, TIOCSWINSZ, &s->size);
    }
    pthread_mutex_unlock(&c->lock);
    return ok;
}

static int env_allowed(const char *name)
{
    return strcmp(name, "LANG") == 0 || strcmp(name, "LANGUAGE") == 0 ||
           strcmp(name, "TZ") == 0 || strncmp(name, "LC_", 3) == 0;
}

static bool check_channel_env_request(void *userdata, const ssh_server_request_params *p)
{
    struct conn *c = userdata;
    if (!env_allowed(p->name) || strlen(p->value) != p->value_len)
        return false;
    char *entry = NULL;
    if (asprintf(&entry, "%s=%s", p->name, p->value) < 0)
        return false;
    pthread_mutex_lock(&c->lock);
    struct session *s = session_find(c, p->channel_id);
    bool ok = s != NULL && !s->started && s->env_count < MAX_ENV;
    if (ok) {
        s->env[s->env_count++] = entry;
        entry = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    free(entry);
    return ok;
}

/* ---- running a session ---------------------------------------------------------------------- */

/* What the child runs with, prepared before fork (the child of a threaded program may only
 * make async-signal-safe calls). */
struct launch {
    char *env[MAX_ENV + 8];
    char argv0[256];
    char slave[64]; /* the pty's device, with a pty */
};

/* Appends "NAME=value" made from format; -1 if out of memory. */
static int add_env(struct launch *l, int *n, const char *format, ...)
{
    char *entry = NULL;
    va_list args;
    va_start(args, format);
    int rc = vasprintf(&entry, format, args);
    va_end(args);
    if (rc < 0)
        return -1;
    l->env[(*n)++] = entry;
    return 0;
}

/* The child's environment: the user's basics, the connection, the accepted variables. */
static int prepare_launch(struct launch *l, struct conn *c, const struct session *s)
{
    int n = 0;
    memset(l, 0, sizeof *l);
    if (add_env(l, &n, "HOME=%s", config.user.pw_dir) < 0 ||
        add_env(l, &n, "USER=%s", config.user.pw_name) < 0 ||
        add_env(l, &n, "LOGNAME=%s", config.user.pw_name) < 0 ||
        add_env(l, &n, "SHELL=%s", config.user.pw_shell) < 0 ||
        add_env(l, &n, "PATH=/usr/local/bin:/usr/bin:/bin") < 0 ||
        add_env(l, &n, "SSH_CONNECTION=%s %s %s %s", c->peer, c->peer_port, c->local,
                c->local_port) < 0 ||
        (s->pty && add_env(l, &n, "TERM=%s", s->term) < 0))
        return -1;
    for (int i = 0; i < s->env_count; i++)
        if (add_env(l, &n, "%s", s->env[i]) < 0)
            return -1;
    const char *base = strrchr(config.user.pw_shell, '/');
    snprintf(l->argv0, sizeof l->argv0, "-%s", base != NULL ? base + 1 : config.user.pw_shell);
    return 0;
}

static void free_launch(struct launch *l)
{
    for (int i = 0; l->env[i] != NULL; i++)
        free(l->env[i]);
}

/* In the child: becomes the command or the login shell. Async-signal-safe calls only. */
static void exec_session(const struct session *s, struct launch *l)
{
    static const char failed[] = "sekura-sshd: cannot run the session\n";
    if (chdir(config.user.pw_dir) != 0 && chdir("/") != 0)
        _exit(127);
    signal(SIGPIPE, SIG_DFL);
    if (s->command != NULL)
        execle("/bin/sh", "sh", "-c", s->command, (char *)NULL, l->env);
    else
        execle(config.user.pw_shell, l->argv0, (char *)NULL, l->env);
    if (write(2, failed, sizeof failed - 1) < 0)
        _exit(127);
    _exit(127);
}

static void close_fds(int *fds, int count)
{
    for (int i = 0; i < count; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* Writes to our end of the session's input never block: copy_input can always stop. */
static void set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* Starts the session with pipes; *in, *out, *err are the parent's ends. The child leads a
 * session and process group of its own (setsid), which a hangup reaches as a whole. Closes
 * every pipe on failure. Standard input, output and error of sekura-sshd are open (main),
 * so the pipes are above 2 and dup2 clears their close-on-exec flag. */
static pid_t spawn_pipes(const struct session *s, struct launch *l, int *in, int *out, int *err)
{
    int p[6] = {-1, -1, -1, -1, -1, -1}; /* in: p[0] p[1], out: p[2] p[3], err: p[4] p[5] */
    if (pipe2(p, O_CLOEXEC) != 0 || pipe2(p + 2, O_CLOEXEC) != 0 ||
        pipe2(p + 4, O_CLOEXEC) != 0) {
        close_fds(p, 6);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        if (dup2(p[0], 0) < 0 || dup2(p[3], 1) < 0 || dup2(p[5], 2) < 0)
            _exit(127);
        exec_session(s, l);
    }
    if (pid < 0) {
        close_fds(p, 6);
        return -1;
    }
    close(p[0]);
    close(p[3]);
    close(p[5]);
    set_nonblocking(p[1]);
    *in = p[1];
    *out = p[2];
    *err = p[4];
    return pid;
}

/* Starts the session on a new pseudo-terminal; *master is the parent's side (closed on
 * failure). */
static pid_t spawn_pty(const struct session *s, struct launch *l, int *master)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0 || ptsname_r(m, l->slave, sizeof l->slave)) {
        if (m >= 0)
            close(m);
        return -1;
    }
    ioctl(m, TIOCSWINSZ, &s->size);
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        int slave = open(l->slave, O_RDWR);
        if (slave < 0)
            _exit(127);
        ioctl(slave, TIOCSCTTY, 0);
        if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0)
            _exit(127);
        if (slave > 2)
            close(slave);
        exec_session(s, l);
    }
    if (pid < 0) {
        close(m);
        return -1;
    }
    set_nonblocking(m);
    *master = m;
    return pid;
}

/* Copies what the client sends to the session's input until EOF, the channel closes, or
 * run_session sets stop. */
struct input_job {
    ssh_channel *ch;
    int fd; /* non-blocking */
    int close_fd; /* a pipe: close it at EOF (a pty master stays open for the output) */
    atomic_int stop;
};

static int write_input(struct input_job *job, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(job->fd, buf, len);
        if (w > 0) {
            buf += w;
            len -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (atomic_load(&job->stop))
                return -1;
            struct pollfd pfd = {.fd = job->fd, .events = POLLOUT};
            poll(&pfd, 1, 200);
        } else if (w < 0 && errno != EINTR) {
            return -1;
        }
    }
    return 0;
}

static void *copy_input(void *arg)
{
    struct input_job *job = arg;
    uint8_t buf[16384];
    ssize_t n;
    while ((n = ssh_channel_recv(job->ch, buf, sizeof buf)) > 0)
        if (write_input(job, buf, (size_t)n) != 0)
            break;
    if (job->close_fd)
        close(job->fd);
    else if (n == 0) /* EOF on a terminal: ^D, as sshd */
        write_input(job, (const uint8_t *)"\004", 1);
    return NULL;
}

/* Whether the client closed the channel or the connection ended. */
static int channel_gone(struct conn *c, ssh_channel *ch)
{
    return !ssh_transport_is_active(c->t) || ssh_channel_exit_status_ready(ch);
}

/* Copies the session's output (and error) to the channel until both end; -1 if the client
 * went away first. */
static int copy_output(struct conn *c, ssh_channel *ch, int out, int err)
{
    struct pollfd fds[2] = {{.fd = out, .events = POLLIN}, {.fd = err, .events = POLLIN}};
    nfds_t count = err >= 0 ? 2 : 1;
    int open_count = (int)count;
    uint8_t buf[65536]; /* a whole pipe buffer per read: fewer sends */
    while (open_count > 0) {
        int ready = poll(fds, count, 1000);
        if (ready < 0 && errno != EINTR)
            return -1;
        if (ready <= 0) {
            if (channel_gone(c, ch))
                return -1;
            continue;
        }
        for (nfds_t i = 0; i < count; i++) {
            if (fds[i].fd < 0 || fds[i].revents == 0)
                continue;
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
                continue;
            if (n <= 0) { /* EOF, or EIO on a pty whose processes all ended */
                fds[i].fd = -1;
                open_count--;
                continue;
            }
            int rc = i == 0 ? ssh_channel_sendall(ch, buf, (size_t)n)
                            : ssh_channel_sendall_stderr(ch, buf, (size_t)n);
            if (rc != SSH_OK)
                return -1;
        }
    }
    return 0;
}

static const char *signal_name(int sig)
{
    static const struct {
        int number;
        const char *name;
    } names[] = {{SIGABRT, "ABRT"}, {SIGALRM, "ALRM"}, {SIGFPE, "FPE"},   {SIGHUP, "HUP"},
                 {SIGILL, "ILL"},   {SIGINT, "INT"},   {SIGKILL, "KILL"}, {SIGPIPE, "PIPE"},
                 {SIGQUIT, "QUIT"}, {SIGSEGV, "SEGV"}, {SIGTERM, "TERM"}, {SIGUSR1, "USR1"},
                 {SIGUSR2, "USR2"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].number == sig)
            return names[i].name;
    return "KILL"; /* RFC 4254 names only these; the closest for others */
}

static long monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec pause = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

/* The session's process group (its leader's pid, from setsid), or the leader alone if it
 * has not reached setsid yet. Only before the leader is reaped, so pid is still ours. */
static void signal_session(pid_t pid, int sig)
{
    if (kill(-pid, sig) != 0)
        kill(pid, sig);
}

/* Reaps the session's process into *status; 0 on success. While the client is there it
 * waits as long as the process runs, as sshd does, even with its output closed. Once the
 * client is gone (client_gone, or seen while waiting) it hangs up on the process group,
 * and kills it KILL_GRACE_MS later. */
static int reap_session(struct conn *c, ssh_channel *ch, pid_t pid, int client_gone,
                        int *status)
{
    long hung_up_at = -1, pause = 1;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        if (hung_up_at < 0 && (client_gone || channel_gone(c, ch))) {
            signal_session(pid, SIGHUP); /* as sshd does */
            hung_up_at = monotonic_ms();
        } else if (hung_up_at >= 0 && monotonic_ms() - hung_up_at >= KILL_GRACE_MS) {
            signal_session(pid, SIGKILL);
            while ((r = waitpid(pid, status, 0)) < 0 && errno == EINTR)
                ;
            return r == pid ? 0 : -1;
        }
        sleep_ms(pause); /* 1, 2, 4 ... ms: quick for a process that is ending anyway */
        pause = pause * 2 > 100 ? 100 : pause * 2;
    }
}

/* Runs the session described by run (a copy of slot taken when it started; slot only gets
 * the pty master for window changes). Closes every descriptor it made. */
static void run_session(struct conn *c, ssh_channel *ch, struct session *slot,
                        const struct session *run)
{
    int in = -1, out = -1, err = -1, master = -1;
    struct launch launch;
    pid_t pid = -1;
    if (prepare_launch(&launch, c, run) == 0)
        pid = run->pty ? spawn_pty(run, &launch, &master)
                       : spawn_pipes(run, &launch, &in, &out, &err);
    free_launch(&launch);
    if (pid < 0) {
        static const char msg[] = "sekura-sshd: cannot start the session\n";
        ssh_channel_sendall_stderr(ch, (const uint8_t *)msg, sizeof msg - 1);
        ssh_channel_send_exit_status(ch, 255);
        return;
    }
    if (run->pty) {
        pthread_mutex_lock(&c->lock);
        slot->master = master; /* from now on window changes resize it */
        pthread_mutex_unlock(&c->lock);
    }
    struct input_job job = {.ch = ch, .fd = run->pty ? master : in, .close_fd = !run->pty};
    atomic_init(&job.stop, 0);
    pthread_t input;
    int have_input = pthread_create(&input, NULL, copy_input, &job) == 0;
    if (!have_input && !run->pty)
        close(in);
    int gone = copy_output(c, ch, run->pty ? master : out, err) != 0;

    int status = 0;
    if (reap_session(c, ch, pid, gone, &status) != 0)
        ssh_channel_send_exit_status(ch, 255);
    else if (WIFSIGNALED(status))
        ssh_channel_send_exit_signal(ch, signal_name(WTERMSIG(status)), WCOREDUMP(status),
                                     NULL);
    else
        ssh_channel_send_exit_status(ch, (uint32_t)WEXITSTATUS(status));
    ssh_channel_send_eof(ch);
    atomic_store(&job.stop, 1);
    ssh_channel_close(ch); /* ends copy_input's wait */
    if (have_input)
        pthread_join(input, NULL);
    pthread_mutex_lock(&c->lock);
    slot->master = -1;
    pthread_mutex_unlock(&c->lock);
    if (run->pty) {
        close(master);
    } else {
        close(out);
        close(err);
    }
}

struct channel_job {
    struct conn *conn;
    ssh_channel *ch;
};

/* Waits for the client to start a command, shell or subsystem, while the channel and the
 * connection last; runs it; closes the channel and frees its session slot. */
static void *serve_channel(void *arg)
{
    struct channel_job *job = arg;
    struct conn *c = job->conn;
    ssh_channel *ch = job->ch;
    free(job);
    uint32_t id = 0;
    ssh_channel_get_id(ch, &id);

    pthread_mutex_lock(&c->lock);
    struct session *s = session_find(c, id);
    pthread_mutex_unlock(&c->lock);
    struct session run;
    memset(&run, 0, sizeof run);
    while (s != NULL && !run.started) {
        pthread_mutex_lock(&c->lock);
        if (!s->started) {
            struct timespec deadline;
            clock_gettime(CLOCK_REALTIME, &deadline);
            deadline.tv_sec += 1;
            pthread_cond_timedwait(&c->changed, &c->lock, &deadline);
        }
        if (s->started) { /* no request changes these now; run owns the strings */
            run = *s;
            s->command = NULL;
            s->env_count = 0;
        }
        pthread_mutex_unlock(&c->lock);
        if (!run.started && channel_gone(c, ch))
            break; /* closed before any exec or shell: nothing to wait for */
    }

    if (run.started)
        run_session(c, ch, s, &run);
    clear_session(&run);
    if (s != NULL)
        release_session(c, s);
    ssh_channel_close(ch);
    ssh_channel_free(ch);

    pthread_mutex_lock(&c->lock);
    c->running--;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* ---- connections ------------------------------------------------------------------------ */

/* One accepted connection, listed from the oldest while it is served. The accept loop adds
 * it (so the count is exact when it decides on the next one); its thread removes it. */
struct client {
    struct client *prev, *next;
    ssh_transport *t; /* live while listed */
    char peer[NI_MAXHOST];
    char peer_port[NI_MAXSERV];
    char local[NI_MAXHOST];
    char local_port[NI_MAXSERV];
    int closing; /* another thread is closing it as an old unauthenticated connection */
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t closed; /* a closing finished */
    struct client *oldest, *newest;
    int count;
} clients = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0};

/* Call with clients.lock held. */
static void unlist(struct client *cl)
{
    if (cl->prev != NULL)
        cl->prev->next = cl->next;
    else
        clients.oldest = cl->next;
    if (cl->next != NULL)
        cl->next->prev = cl->prev;
    else
        clients.newest = cl->prev;
    clients.count--;
}

/* If more than MaxUnauthenticated connections have not logged in (cl among them), closes
 * the oldest of them other than cl. The transport stays live meanwhile: its own thread
 * waits for closing to clear before it frees it. */
static void limit_unauthenticated(struct client *cl)
{
    int waiting = 0;
    struct client *victim = NULL;
    pthread_mutex_lock(&clients.lock);
    for (struct client *o = clients.oldest; o != NULL; o = o->next) {
        if (o->closing || ssh_transport_is_authenticated(o->t))
            continue;
        waiting++;
        if (victim == NULL && o != cl)
            victim = o;
    }
    if (waiting <= config.max_unauthenticated)
        victim = NULL;
    if (victim != NULL)
        victim->closing = 1;
    pthread_mutex_unlock(&clients.lock);
    if (victim == NULL)
        return;
    logmsg("%d connections not authenticated (MaxUnauthenticated %d): closing the oldest, "
           "from %s port %s",
           waiting, config.max_unauthenticated, victim->peer, victim->peer_port);
    ssh_transport_close(victim->t);
    pthread_mutex_lock(&clients.lock);
    victim->closing = 0;
    pthread_cond_broadcast(&clients.closed);
    pthread_mutex_unlock(&clients.lock);
}

static void *serve_connection(void *arg)
{
    struct client *cl = arg;
    ssh_transport *t = cl->t;
    limit_unauthenticated(cl);

    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        goto done;
    memcpy(c->peer, cl->peer, sizeof c->peer);
    memcpy(c->peer_port, cl->peer_port, sizeof c->peer_port);
    memcpy(c->local, cl->local, sizeof c->local);
    memcpy(c->local_port, cl->local_port, sizeof c->local_port);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->changed, NULL);
    c->t = t;

    ssh_server_callbacks cb;
    ssh_server_callbacks_init(&cb);
    cb.userdata = c;
    cb.userdata_free = free_conn;
    cb.get_allowed_auths = get_allowed_auths;
    cb.check_auth_password = check_auth_password;
    cb.check_auth_publickey = check_auth_publickey;
    cb.check_auth_interactive = check_auth_interactive;
    cb.check_auth_interactive_response = check_auth_interactive_response;
    cb.check_channel_request = check_channel_request;
    cb.check_channel_exec_request = check_channel_exec_request;
    cb.check_channel_shell_request = check_channel_shell_request;
    cb.check_channel_subsystem_request = check_channel_subsystem_request;
    cb.check_channel_pty_request = check_channel_pty_request;
    cb.check_channel_window_change_request = check_channel_window_change_request;
    cb.check_channel_env_request = check_channel_env_request;
    /* c now belongs to the transport; free_conn releases it after ssh_transport_free. */
    if (ssh_transport_start_server(t, &cb) != SSH_OK) {
        logmsg("connection from %s port %s: %s", c->peer, c->peer_port, sekura_last_error());
        goto done;
    }

    ssh_channel *ch;
    while ((ch = ssh_transport_accept(t, -1)) != NULL) {
        struct channel_job *job = malloc(sizeof *job);
        pthread_t thread;
        if (job == NULL) {
            ssh_channel_free(ch);
            continue;
        }
        job->conn = c;
        job->ch = ch;
        pthread_mutex_lock(&c->lock);
        c->running++;
        pthread_mutex_unlock(&c->lock);
        if (pthread_create(&thread, NULL, serve_channel, job) == 0) {
            pthread_detach(thread);
        } else {
            ssh_channel_free(ch);
            free(job);
            pthread_mutex_lock(&c->lock);
            c->running--;
            pthread_mutex_unlock(&c->lock);
        }
    }
    pthread_mutex_lock(&c->lock);
    while (c->running > 0)
        pthread_cond_wait(&c->changed, &c->lock);
    pthread_mutex_unlock(&c->lock);
    logmsg("Connection closed by %s port %s", c->peer, c->peer_port);

done:
    pthread_mutex_lock(&clients.lock);
    unlist(cl);
    while (cl->closing)
        pthread_cond_wait(&clients.closed, &clients.lock);
    pthread_mutex_unlock(&clients.lock);
    ssh_transport_free(t);
    free(cl);
    return NULL;
}

/* Takes a new connection: refused beyond MaxConnections, else listed and given a thread. */
static void admit(int fd)
{
    struct client *cl = calloc(1, sizeof *cl);
    if (cl == NULL) {
        close(fd);
        return;
    }
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    if (getpeername(fd, (struct sockaddr *)&addr, &len) != 0 ||
        getnameinfo((struct sockaddr *)&addr, len, cl->peer, sizeof cl->peer, cl->peer_port,
                    sizeof cl->peer_port, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        snprintf(cl->peer, sizeof cl->peer, "?");
    len = sizeof addr;
    if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0 ||
        getnameinfo((struct sockaddr *)&addr, len, cl->local, sizeof cl->local, cl->local_port,
                    sizeof cl->local_port, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        snprintf(cl->local, sizeof cl->local, "?");

    pthread_mutex_lock(&clients.lock);
    int full = clients.count >= config.max_connections;
    pthread_mutex_unlock(&clients.lock);
    if (full) {
        logmsg("Refusing connection from %s port %s: %d connections already "
               "(MaxConnections)",
               cl->peer, cl->peer_port, config.max_connections);
        close(fd);
        free(cl);
        return;
    }
    cl->t = ssh_transport_new(fd); /* owns fd from now on */
    if (cl->t == NULL) {
        close(fd);
        free(cl);
        return;
    }
    ssh_transport_set_server_config(cl->t, config.server);

    pthread_mutex_lock(&clients.lock);
    cl->prev = clients.newest;
    if (clients.newest != NULL)
        clients.newest->next = cl;
    else
        clients.oldest = cl;
    clients.newest = cl;
    clients.count++;
    pthread_mutex_unlock(&clients.lock);

    pthread_t thread;
    if (pthread_create(&thread, NULL, serve_connection, cl) == 0) {
        pthread_detach(thread);
        return;
    }
    pthread_mutex_lock(&clients.lock);
    unlist(cl);
    while (cl->closing)
        pthread_cond_wait(&clients.closed, &clients.lock);
    pthread_mutex_unlock(&clients.lock);
    ssh_transport_free(cl->t);
    free(cl);
}

static void on_stop(int sig)
{
    stop_signal = sig;
}

static int listen_on(void)
{
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    int rc = getaddrinfo(config.address, config.port, &hints, &ai);
    if (rc != 0)
        die("bad address: %s", gai_strerror(rc));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0)
        die("cannot listen: %s", strerror(errno));
    freeaddrinfo(ai);
    return fd;
}

int main(int argc, char **argv)
{
    /* Descriptors 0 to 2 open, so that no socket, pipe or pty lands on them. */
    int null_fd;
    while ((null_fd = open("/dev/null", O_RDWR)) >= 0 && null_fd <= 2)
        ;
    if (null_fd > 2)
        close(null_fd);
    parse_options(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {0};
    sa.sa_handler = on_stop; /* no SA_RESTART: poll() returns at once */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int fd = listen_on();
    logmsg("Server listening on %s port %s.", config.address, config.port);
    while (!stop_signal) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, -1) <= 0)
            continue;
        int client = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (client >= 0) {
            admit(client);
        } else if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
            /* EMFILE, ENFILE, ENOBUFS...: the connection stays queued; retrying at once
             * would spin */
            logmsg("accept: %s", strerror(errno));
            sleep_ms(100);
        }
    }
    close(fd);
    logmsg("Received signal %d; terminating.", (int)stop_signal);
    return 0;
}
