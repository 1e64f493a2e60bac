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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <sekura.h>

#define PROGRAM "sekura-sshd"
#define MAX_HOST_KEYS 8
#define MAX_AUTHORIZED 256
#define MAX_CHANNELS 32
#define MAX_ENV 16
#define DEFAULT_SFTP_SERVER "/usr/lib/openssh/sftp-server"

/* ---- configuration ----------------------------------------------------------------------- */

static struct {
    const char *address;
    const char *port;
    ssh_pkey *host_keys[MAX_HOST_KEYS];
    int host_key_count;
    ssh_pkey *authorized[MAX_AUTHORIZED];
    int authorized_count;
    const char *password_file;
    const char *sftp_server; /* "": no sftp subsystem */
    char allowed_auths[64];
    struct passwd user; /* the one user who may log in */
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
                    "[-o SftpServer=PROGRAM]\n");
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

static void parse_options(int argc, char **argv)
{
    int opt;
    config.address = "127.0.0.1";
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
            else
                die("unknown option %s", optarg);
            break;
        default:
            usage();
        }
    }
    if (optind != argc || config.port == NULL || config.host_key_count == 0)
        usage();
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

/* A channel's requests, matched to the accepted channel by id. */
struct session {
    int used;
    uint32_t id;
    int started; /* exec or shell requested */
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

/* The session of channel id, made on first use; NULL if too many. Call with the lock held. */
static struct session *session_for(struct conn *c, uint32_t id)
{
    struct session *slot = NULL;
    for (int i = 0; i < MAX_CHANNELS; i++) {
        if (c->sessions[i].used && c->sessions[i].id == id)
            return &c->sessions[i];
        if (!c->sessions[i].used && slot == NULL)
            slot = &c->sessions[i];
    }
    if (slot != NULL) {
        memset(slot, 0, sizeof *slot);
        slot->used = 1;
        slot->id = id;
        slot->master = -1;
    }
    return slot;
}

static void release_session(struct conn *c, struct session *s)
{
    pthread_mutex_lock(&c->lock);
    free(s->command);
    for (int i = 0; i < s->env_count; i++)
        free(s->env[i]);
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
    (void)userdata;
    return strcmp(p->kind, "session") == 0 ? SSH_OPEN_SUCCEEDED
                                           : SSH_OPEN_FAILED_UNKNOWN_CHANNEL_TYPE;
}

static bool start_session(struct conn *c, uint32_t id, const char *command)
{
    pthread_mutex_lock(&c->lock);
    struct session *s = session_for(c, id);
    if (s != NULL && !s->started) {
        s->started = 1;
        s->command = command != NULL ? strdup(command) : NULL;
        pthread_cond_broadcast(&c->changed);
    }
    pthread_mutex_unlock(&c->lock);
    return s != NULL;
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

static bool check_channel_pty_request(void *userdata, const ssh_server_pty_params *p)
{
    struct conn *c = userdata;
    pthread_mutex_lock(&c->lock);
    struct session *s = session_for(c, p->channel_id);
    if (s != NULL) {
        s->pty = 1;
        snprintf(s->term, sizeof s->term, "%s", p->term);
        s->size.ws_col = (unsigned short)p->width_chars;
        s->size.ws_row = (unsigned short)p->height_rows;
        s->size.ws_xpixel = (unsigned short)p->width_pixels;
        s->size.ws_ypixel = (unsigned short)p->height_pixels;
    }
    pthread_mutex_unlock(&c->lock);
    return s != NULL;
}

static bool check_channel_window_change_request(void *userdata, const ssh_server_pty_params *p)
{
    struct conn *c = userdata;
    pthread_mutex_lock(&c->lock);
    struct session *s = session_for(c, p->channel_id);
    if (s != NULL) {
        s->size.ws_col = (unsigned short)p->width_chars;
        s->size.ws_row = (unsigned short)p->height_rows;
        s->size.ws_xpixel = (unsigned short)p->width_pixels;
        s->size.ws_ypixel = (unsigned short)p->height_pixels;
        if (s->master >= 0)
            ioctl(s->master, TIOCSWINSZ, &s->size);
    }
    pthread_mutex_unlock(&c->lock);
    return s != NULL;
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
    pthread_mutex_lock(&c->lock);
    struct session *s = session_for(c, p->channel_id);
    int ok = s != NULL && !s->started && s->env_count < MAX_ENV;
    if (ok) {
        size_t len = strlen(p->name) + p->value_len + 2;
        s->env[s->env_count] = malloc(len);
        snprintf(s->env[s->env_count++], len, "%s=%s", p->name, p->value);
    }
    pthread_mutex_unlock(&c->lock);
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

/* The child's environment: the user's basics, the connection, the accepted variables. */
static int prepare_launch(struct launch *l, struct conn *c, const struct session *s)
{
    int n = 0;
    memset(l, 0, sizeof *l);
    if (asprintf(&l->env[n++], "HOME=%s", config.user.pw_dir) < 0 ||
        asprintf(&l->env[n++], "USER=%s", config.user.pw_name) < 0 ||
        asprintf(&l->env[n++], "LOGNAME=%s", config.user.pw_name) < 0 ||
        asprintf(&l->env[n++], "SHELL=%s", config.user.pw_shell) < 0 ||
        asprintf(&l->env[n++], "PATH=/usr/local/bin:/usr/bin:/bin") < 0 ||
        asprintf(&l->env[n++], "SSH_CONNECTION=%s %s %s %s", c->peer, c->peer_port, c->local,
                 c->local_port) < 0 ||
        (s->pty && asprintf(&l->env[n++], "TERM=%s", s->term) < 0))
        return -1;
    for (int i = 0; i < s->env_count; i++)
        l->env[n++] = strdup(s->env[i]);
    const char *base = strrchr(config.user.pw_shell, '/');
    snprintf(l->argv0, sizeof l->argv0, "-%s", base != NULL ? base + 1 : config.user.pw_shell);
    return 0;
}

static void free_launch(struct launch *l)
{
    for (int i = 0; l->env[i] != NULL; i++)
        free(l->env[i]);
}

/* In the child: becomes the command or the login shell. */
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

/* Starts the session with pipes; *in, *out, *err are the parent's ends. */
static pid_t spawn_pipes(const struct session *s, struct launch *l, int *in, int *out, int *err)
{
    int p_in[2], p_out[2], p_err[2];
    if (pipe2(p_in, O_CLOEXEC) != 0 || pipe2(p_out, O_CLOEXEC) != 0 ||
        pipe2(p_err, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        dup2(p_in[0], 0);
        dup2(p_out[1], 1);
        dup2(p_err[1], 2);
        exec_session(s, l);
    }
    close(p_in[0]);
    close(p_out[1]);
    close(p_err[1]);
    *in = p_in[1];
    *out = p_out[0];
    *err = p_err[0];
    return pid;
}

/* Starts the session on a new pseudo-terminal; *master is the parent's side. */
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
        dup2(slave, 0);
        dup2(slave, 1);
        dup2(slave, 2);
        if (slave > 2)
            close(slave);
        exec_session(s, l);
    }
    *master = m;
    return pid;
}

/* Copies what the client sends to the session's input until EOF or the channel closes. */
struct input_job {
    ssh_channel *ch;
    int fd;
    int close_fd; /* a pipe: close it at EOF (a pty master stays open for the output) */
};

static void *copy_input(void *arg)
{
    struct input_job *job = arg;
    uint8_t buf[16384];
    ssize_t n;
    while ((n = ssh_channel_recv(job->ch, buf, sizeof buf)) > 0) {
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(job->fd, buf + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                n = -1;
                break;
            }
            done += w;
        }
        if (n < 0)
            break;
    }
    if (job->close_fd)
        close(job->fd);
    else if (n == 0 && write(job->fd, "\004", 1) < 0) /* EOF on a terminal: ^D, as sshd */
        return NULL;
    return NULL;
}

/* Copies the session's output (and error) to the channel until both end; -1 if the client
 * went away first. */
static int copy_output(struct conn *c, ssh_channel *ch, int out, int err)
{
    struct pollfd fds[2] = {{.fd = out, .events = POLLIN}, {.fd = err, .events = POLLIN}};
    nfds_t count = err >= 0 ? 2 : 1;
    int open_count = (int)count;
    uint8_t buf[16384];
    while (open_count > 0) {
        int ready = poll(fds, count, 1000);
        if (ready < 0 && errno != EINTR)
            return -1;
        if (ready <= 0) {
            if (!ssh_transport_is_active(c->t))
                return -1;
            continue;
        }
        for (nfds_t i = 0; i < count; i++) {
            if (fds[i].fd < 0 || fds[i].revents == 0)
                continue;
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
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

static void run_session(struct conn *c, ssh_channel *ch, struct session *s)
{
    int in = -1, out = -1, err = -1, master = -1;
    struct launch launch;
    pid_t pid = -1;
    if (prepare_launch(&launch, c, s) == 0)
        pid = s->pty ? spawn_pty(s, &launch, &master) : spawn_pipes(s, &launch, &in, &out, &err);
    free_launch(&launch);
    if (pid < 0) {
        static const char msg[] = "sekura-sshd: cannot start the session\n";
        ssh_channel_sendall_stderr(ch, (const uint8_t *)msg, sizeof msg - 1);
        ssh_channel_send_exit_status(ch, 255);
        return;
    }
    if (s->pty) {
        pthread_mutex_lock(&c->lock);
        s->master = master; /* from now on window changes resize it */
        pthread_mutex_unlock(&c->lock);
    }
    struct input_job job = {ch, s->pty ? master : in, !s->pty};
    pthread_t input;
    int have_input = pthread_create(&input, NULL, copy_input, &job) == 0;
    if (!have_input && !s->pty)
        close(in);
    if (copy_output(c, ch, s->pty ? master : out, err) != 0)
        kill(-pid, SIGHUP); /* the client is gone: hang up on the session, as sshd does */

    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(status))
        ssh_channel_send_exit_signal(ch, signal_name(WTERMSIG(status)), WCOREDUMP(status),
                                     NULL);
    else
        ssh_channel_send_exit_status(ch, (uint32_t)WEXITSTATUS(status));
    ssh_channel_send_eof(ch);
    ssh_channel_close(ch); /* ends copy_input's wait */
    if (have_input)
        pthread_join(input, NULL);
    pthread_mutex_lock(&c->lock);
    s->master = -1;
    pthread_mutex_unlock(&c->lock);
    if (s->pty) {
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

/* Waits for the client to ask for a command or a shell (while the connection lasts), runs
 * it, and closes the channel. */
static void *serve_channel(void *arg)
{
    struct channel_job *job = arg;
    struct conn *c = job->conn;
    ssh_channel *ch = job->ch;
    free(job);
    uint32_t id = 0;
    ssh_channel_get_id(ch, &id);

    pthread_mutex_lock(&c->lock);
    struct session *s = session_for(c, id);
    while (s != NULL && !s->started && ssh_transport_is_active(c->t)) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 1;
        pthread_cond_timedwait(&c->changed, &c->lock, &deadline);
    }
    int started = s != NULL && s->started;
    pthread_mutex_unlock(&c->lock);

    if (started)
        run_session(c, ch, s);
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

struct connection_job {
    int fd;
};

static void *serve_connection(void *arg)
{
    int fd = ((struct connection_job *)arg)->fd;
    free(arg);
    struct conn *c = calloc(1, sizeof *c);
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    getpeername(fd, (struct sockaddr *)&addr, &len);
    getnameinfo((struct sockaddr *)&addr, len, c->peer, sizeof c->peer, c->peer_port,
                sizeof c->peer_port, NI_NUMERICHOST | NI_NUMERICSERV);
    len = sizeof addr;
    getsockname(fd, (struct sockaddr *)&addr, &len);
    getnameinfo((struct sockaddr *)&addr, len, c->local, sizeof c->local, c->local_port,
                sizeof c->local_port, NI_NUMERICHOST | NI_NUMERICSERV);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->changed, NULL);

    ssh_transport *t = ssh_transport_new(fd);
    c->t = t;
    for (int i = 0; i < config.host_key_count; i++)
        ssh_transport_add_server_key(t, config.host_keys[i]);

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
        ssh_transport_free(t);
        return NULL;
    }

    ssh_channel *ch;
    while ((ch = ssh_transport_accept(t, -1)) != NULL) {
        struct channel_job *job = malloc(sizeof *job);
        pthread_t thread;
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
    ssh_transport_free(t);
    return NULL;
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
        if (client < 0)
            continue;
        struct connection_job *job = malloc(sizeof *job);
        pthread_t thread;
        job->fd = client;
        if (pthread_create(&thread, NULL, serve_connection, job) == 0) {
            pthread_detach(thread);
        } else {
            close(client);
            free(job);
        }
    }
    close(fd);
    logmsg("Received signal %d; terminating.", (int)stop_signal);
    return 0;
}
