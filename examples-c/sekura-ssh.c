/*
 * sekura-ssh: run one command on a remote host, like OpenSSH's ssh(1), using Sekura.
 *
 *   sekura-ssh [-CnV] [-F none] [-i identity_file]... [-l login_name] [-o option]...
 *              [-p port] [user@]hostname command [argument ...]
 *
 * The command's words are joined with spaces, as ssh does. Local standard input goes to the
 * command (or nothing with -n), its output and errors come back on standard output and
 * standard error, and sekura-ssh exits with its exit status, or 255 if the connection,
 * authentication or the command itself failed (killed by a signal, no status).
 *
 * Options given with -o, names case-insensitive, "Key=Value" or "Key Value"; as in ssh, the
 * first value given for a key is the one used:
 *   KexAlgorithms, HostKeyAlgorithms, Ciphers, MACs   ordered, comma-separated lists
 *   UserKnownHostsFile        default ~/.ssh/known_hosts
 *   StrictHostKeyChecking     yes, accept-new, no (off), ask (the default: since sekura-ssh
 *                             cannot ask, like yes)
 *   PasswordAuthentication, KbdInteractiveAuthentication, PubkeyAuthentication, BatchMode,
 *   IdentitiesOnly            yes or no (IdentitiesOnly is accepted; with no agent support
 *                             yet, only the identity files are ever offered)
 *   ConnectTimeout            seconds, or none
 *   Compression               yes or no (-C is Compression=yes)
 *   RekeyLimit                bytes (K, M, G suffixes) or "default", then optionally a time
 *                             (s, m, h suffixes) or "none", as in ssh_config
 *   ServerAliveInterval       seconds between keepalives when the server is silent (0: off)
 *   ServerAliveCountMax       unanswered keepalives before giving up (default 3)
 *   IdentityFile, Port, User  as -i, -p and -l
 *
 * Authentication, in ssh's order, with the methods the server allows: public key with each
 * identity (the -i files, else those of ~/.ssh/id_ed25519, id_ecdsa and id_rsa that exist),
 * then keyboard-interactive answering every prompt with $SSHPASS, then password $SSHPASS.
 * The last two need SSHPASS set and are off under BatchMode=yes (which forbids prompting,
 * and SSHPASS stands in for a prompt). Encrypted identities are skipped: there is no one to
 * ask for the passphrase.
 *
 * Build: cc -std=c11 -pthread sekura-ssh.c $(pkg-config --cflags --libs sekura)
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sekura.h>

#define PROGRAM "sekura-ssh"
#define EXIT_FAILURE_SSH 255
#define MAX_IDENTITIES 32
#define UNSET (-1)

enum strict_mode { STRICT_UNSET = -1, STRICT_NO, STRICT_YES, STRICT_ASK, STRICT_ACCEPT_NEW };

struct options {
    const char *host;
    char *user;
    int port;
    char *identities[MAX_IDENTITIES];
    size_t identity_count;
    char *algorithms[4]; /* indexed by SSH_ALG_KEX, _HOSTKEY, _CIPHER, _MAC */
    char *known_hosts;
    enum strict_mode strict;
    int password_auth;
    int kbdint_auth;
    int pubkey_auth;
    int batch_mode;
    int compression;
    long long rekey_bytes; /* 0: the library's default */
    int rekey_seconds;     /* 0: no time limit */
    int rekey_set;
    int alive_interval; /* seconds; 0: off */
    int alive_count_max;
    int connect_timeout; /* seconds; 0 for none */
    int stdin_null;
    char *command;
};

/* ---- small helpers ------------------------------------------------------------------- */

static void die(const char *message)
{
    fprintf(stderr, "%s: %s\n", PROGRAM, message);
    exit(EXIT_FAILURE_SSH);
}

/* Prints "sekura-ssh: [<what>: ]<Sekura's last error>" and exits 255. */
static void die_sekura(const char *what)
{
    const char *detail = sekura_last_error();
    if (detail[0] == '\0')
        detail = sekura_result_str(sekura_last_result());
    if (what != NULL)
        fprintf(stderr, "%s: %s: %s\n", PROGRAM, what, detail);
    else
        fprintf(stderr, "%s: %s\n", PROGRAM, detail);
    exit(EXIT_FAILURE_SSH);
}

static char *xstrdup(const char *s)
{
    char *copy = strdup(s);
    if (copy == NULL)
        die("out of memory");
    return copy;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: %s [-CnV] [-F none] [-i identity_file] [-l login_name] [-o option]\n"
            "                  [-p port] [user@]hostname command [argument ...]\n",
            PROGRAM);
    exit(EXIT_FAILURE_SSH);
}

/* Writes all of buf to fd; 0 on success, -1 with errno on failure. */
static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static const char *home_directory(void)
{
    const struct passwd *pw = getpwuid(getuid());
    if (pw != NULL && pw->pw_dir != NULL && pw->pw_dir[0] != '\0')
        return pw->pw_dir;
    const char *home = getenv("HOME");
    return home != NULL ? home : "/";
}

/* A copy of path with a leading "~/" replaced by the home directory. */
static char *expand_tilde(const char *path)
{
    if (strncmp(path, "~/", 2) != 0)
        return xstrdup(path);
    const char *home = home_directory();
    size_t len = strlen(home) + strlen(path);
    char *out = malloc(len);
    if (out == NULL)
        die("out of memory");
    snprintf(out, len, "%s%s", home, path + 1);
    return out;
}

static char *default_user(void)
{
    const struct passwd *pw = getpwuid(getuid());
    if (pw != NULL && pw->pw_name != NULL)
        return xstrdup(pw->pw_name);
    const char *user = getenv("USER");
    if (user == NULL)
        die("cannot tell who you are: no passwd entry and no $USER; use -l");
    return xstrdup(user);
}

/* "[host]:port" as known_hosts and ssh's messages name a host on a port other than 22. */
static void host_label(char *out, size_t size, const char *host, int port)
{
    if (port == 22)
        snprintf(out, size, "%s", host);
    else
        snprintf(out, size, "[%s]:%d", host, port);
}

/* ---- options ------------------------------------------------------------------------- */

static void options_init(struct options *o)
{
    memset(o, 0, sizeof *o);
    o->port = UNSET;
    o->strict = STRICT_UNSET;
    o->password_auth = UNSET;
    o->kbdint_auth = UNSET;
    o->pubkey_auth = UNSET;
    o->batch_mode = UNSET;
    o->compression = UNSET;
    o->rekey_set = UNSET;
    o->alive_interval = UNSET;
    o->alive_count_max = UNSET;
    o->connect_timeout = UNSET;
}

static void options_free(struct options *o)
{
    free(o->user);
    for (size_t i = 0; i < o->identity_count; i++)
        free(o->identities[i]);
    for (size_t i = 0; i < sizeof o->algorithms / sizeof o->algorithms[0]; i++)
        free(o->algorithms[i]);
    free(o->known_hosts);
    free(o->command);
}

static void bad_value(const char *key, const char *value)
{
    fprintf(stderr, "%s: -o %s: invalid value \"%s\"\n", PROGRAM, key, value);
    exit(EXIT_FAILURE_SSH);
}

static int parse_port(const char *key, const char *value)
{
    char *end;
    errno = 0;
    long port = strtol(value, &end, 10);
    if (errno != 0 || *end != '\0' || port < 1 || port > 65535)
        bad_value(key, value);
    return (int)port;
}

static int parse_yes_no(const char *key, const char *value)
{
    if (strcasecmp(value, "yes") == 0 || strcasecmp(value, "true") == 0)
        return 1;
    if (strcasecmp(value, "no") == 0 || strcasecmp(value, "false") == 0)
        return 0;
    bad_value(key, value);
    return 0;
}

static enum strict_mode parse_strict(const char *key, const char *value)
{
    if (strcasecmp(value, "yes") == 0 || strcasecmp(value, "true") == 0)
        return STRICT_YES;
    if (strcasecmp(value, "no") == 0 || strcasecmp(value, "false") == 0 ||
        strcasecmp(value, "off") == 0)
        return STRICT_NO;
    if (strcasecmp(value, "ask") == 0)
        return STRICT_ASK;
    if (strcasecmp(value, "accept-new") == 0)
        return STRICT_ACCEPT_NEW;
    bad_value(key, value);
    return STRICT_ASK;
}

static int parse_timeout(const char *key, const char *value)
{
    if (strcasecmp(value, "none") == 0)
        return 0;
    char *end;
    errno = 0;
    long seconds = strtol(value, &end, 10);
    if (errno != 0 || *end != '\0' || seconds < 0 || seconds > INT_MAX / 1000)
        bad_value(key, value);
    return (int)seconds;
}

/* A number with an optional unit: multiplier for each suffix letter in `units`. */
static long long parse_scaled(const char *key, const char *value, const char *units,
                              const long long *factors)
{
    char *end;
    errno = 0;
    long long n = strtoll(value, &end, 10);
    if (errno != 0 || end == value || n < 0)
        bad_value(key, value);
    if (*end != '\0') {
        const char *unit = strchr(units, toupper((unsigned char)*end));
        if (unit == NULL || end[1] != '\0')
            bad_value(key, value);
        long long factor = factors[unit - units];
        if (n > LLONG_MAX / factor)
            bad_value(key, value);
        n *= factor;
    }
    return n;
}

/* RekeyLimit: "SIZE [TIME]", SIZE a byte count or "default", TIME seconds or "none". */
static void parse_rekey_limit(struct options *o, const char *key, const char *value)
{
    static const long long size_factors[] = {1LL << 10, 1LL << 20, 1LL << 30};
    static const long long time_factors[] = {1, 60, 3600};
    if (o->rekey_set != UNSET)
        return;
    char *copy = xstrdup(value);
    char *size = strtok(copy, " \t");
    char *time = strtok(NULL, " \t");
    if (size == NULL || strtok(NULL, " \t") != NULL)
        bad_value(key, value);
    o->rekey_bytes = strcasecmp(size, "default") == 0
                         ? 0
                         : parse_scaled(key, size, "KMG", size_factors);
    if (time != NULL && strcasecmp(time, "none") != 0) {
        long long seconds = parse_scaled(key, time, "SMH", time_factors);
        if (seconds > INT_MAX)
            bad_value(key, value);
        o->rekey_seconds = (int)seconds;
    }
    o->rekey_set = 1;
    free(copy);
}

static int parse_count(const char *key, const char *value)
{
    char *end;
    errno = 0;
    long n = strtol(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || n < 0 || n > INT_MAX)
        bad_value(key, value);
    return (int)n;
}

static void add_identity(struct options *o, const char *path)
{
    if (o->identity_count == MAX_IDENTITIES)
        die("too many identity files");
    o->identities[o->identity_count++] = expand_tilde(path);
}

static void set_algorithms(struct options *o, int kind, const char *key, const char *value)
{
    if (value[0] == '+' || value[0] == '-' || value[0] == '^') {
        fprintf(stderr, "%s: -o %s: lists starting with '+', '-' or '^' are not supported; "
                        "give the whole list\n", PROGRAM, key);
        exit(EXIT_FAILURE_SSH);
    }
    if (o->algorithms[kind] == NULL)
        o->algorithms[kind] = xstrdup(value);
}

static void set_int_once(int *field, int value)
{
    if (*field == UNSET)
        *field = value;
}

/* Applies one -o option; like ssh, the first value given for a key wins. */
static void apply_option(struct options *o, const char *key, const char *value)
{
    static const struct {
        const char *name;
        int kind;
    } algorithm_keys[] = {
        {"KexAlgorithms", SSH_ALG_KEX},
        {"HostKeyAlgorithms", SSH_ALG_HOSTKEY},
        {"Ciphers", SSH_ALG_CIPHER},
        {"MACs", SSH_ALG_MAC},
    };
    for (size_t i = 0; i < sizeof algorithm_keys / sizeof algorithm_keys[0]; i++) {
        if (strcasecmp(key, algorithm_keys[i].name) == 0) {
            set_algorithms(o, algorithm_keys[i].kind, key, value);
            return;
        }
    }
    if (strcasecmp(key, "UserKnownHostsFile") == 0) {
        if (o->known_hosts == NULL)
            o->known_hosts = expand_tilde(value);
    } else if (strcasecmp(key, "StrictHostKeyChecking") == 0) {
        enum strict_mode mode = parse_strict(key, value);
        if (o->strict == STRICT_UNSET)
            o->strict = mode;
    } else if (strcasecmp(key, "PasswordAuthentication") == 0) {
        set_int_once(&o->password_auth, parse_yes_no(key, value));
    } else if (strcasecmp(key, "KbdInteractiveAuthentication") == 0) {
        set_int_once(&o->kbdint_auth, parse_yes_no(key, value));
    } else if (strcasecmp(key, "PubkeyAuthentication") == 0) {
        set_int_once(&o->pubkey_auth, parse_yes_no(key, value));
    } else if (strcasecmp(key, "BatchMode") == 0) {
        set_int_once(&o->batch_mode, parse_yes_no(key, value));
    } else if (strcasecmp(key, "IdentitiesOnly") == 0) {
        (void)parse_yes_no(key, value); /* no agent yet: only identity files are offered */
    } else if (strcasecmp(key, "Compression") == 0) {
        set_int_once(&o->compression, parse_yes_no(key, value));
    } else if (strcasecmp(key, "RekeyLimit") == 0) {
        parse_rekey_limit(o, key, value);
    } else if (strcasecmp(key, "ServerAliveInterval") == 0) {
        set_int_once(&o->alive_interval, parse_count(key, value));
    } else if (strcasecmp(key, "ServerAliveCountMax") == 0) {
        set_int_once(&o->alive_count_max, parse_count(key, value));
    } else if (strcasecmp(key, "ConnectTimeout") == 0) {
        set_int_once(&o->connect_timeout, parse_timeout(key, value));
    } else if (strcasecmp(key, "IdentityFile") == 0) {
        add_identity(o, value);
    } else if (strcasecmp(key, "Port") == 0) {
        set_int_once(&o->port, parse_port(key, value));
    } else if (strcasecmp(key, "User") == 0) {
        if (o->user == NULL)
            o->user = xstrdup(value);
    } else {
        fprintf(stderr, "%s: -o %s: unsupported option\n", PROGRAM, key);
        exit(EXIT_FAILURE_SSH);
    }
}

/* Splits "Key=Value", "Key Value" or "Key = Value" (as ssh does) and applies it. */
static void parse_dash_o(struct options *o, const char *arg)
{
    char *copy = xstrdup(arg);
    char *key = copy + strspn(copy, " \t");
    char *sep = key + strcspn(key, " \t=");
    char *value = sep + strspn(sep, " \t");
    if (*value == '=')
        value += 1 + strspn(value + 1, " \t");
    *sep = '\0';
    size_t len = strlen(value);
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
        value[--len] = '\0';
    if (key[0] == '\0' || value[0] == '\0') {
        fprintf(stderr, "%s: -o \"%s\": expected Key=Value\n", PROGRAM, arg);
        exit(EXIT_FAILURE_SSH);
    }
    apply_option(o, key, value);
    free(copy);
}

static void print_version(void)
{
    fprintf(stderr, "%s %s, Sekura %s\n", PROGRAM, SEKURA_VERSION_STRING, sekura_version());
    exit(0);
}

/* Handles one option letter; returns 1 if it consumed value (the next argument). */
static int parse_flag(struct options *o, char flag, const char *value)
{
    switch (flag) {
    case 'V':
        print_version();
        return 0;
    case 'n':
        o->stdin_null = 1;
        return 0;
    case 'C':
        o->compression = 1;
        return 0;
    case 'p':
    case 'l':
    case 'i':
    case 'F':
    case 'o':
        break;
    default:
        fprintf(stderr, "%s: unknown option -- %c\n", PROGRAM, flag);
        usage();
    }
    if (value == NULL) {
        fprintf(stderr, "%s: option requires an argument -- %c\n", PROGRAM, flag);
        usage();
    }
    if (flag == 'p') {
        o->port = parse_port("Port", value);
    } else if (flag == 'l') {
        free(o->user);
        o->user = xstrdup(value);
    } else if (flag == 'i') {
        add_identity(o, value);
    } else if (flag == 'F') {
        if (strcmp(value, "none") != 0)
            die("-F: only \"none\" is supported (sekura-ssh reads no configuration files)");
    } else {
        parse_dash_o(o, value);
    }
    return 1;
}

/* Parses one "-abc" or "-pVALUE" / "-p VALUE" argument; returns how many it consumed. */
static int parse_option_argument(struct options *o, char *const *argv, int remaining)
{
    const char *arg = argv[0];
    for (size_t i = 1; arg[i] != '\0'; i++) {
        const char *attached = arg[i + 1] != '\0' ? &arg[i + 1] : NULL;
        const char *value = attached != NULL ? attached : (remaining > 1 ? argv[1] : NULL);
        if (parse_flag(o, arg[i], value))
            return attached != NULL ? 1 : 2;
    }
    return 1;
}

/* Joins words with single spaces, as ssh builds the remote command. */
static char *join_words(char *const *words, int count)
{
    size_t len = 1;
    for (int i = 0; i < count; i++)
        len += strlen(words[i]) + 1;
    char *out = malloc(len);
    if (out == NULL)
        die("out of memory");
    out[0] = '\0';
    for (int i = 0; i < count; i++) {
        if (i > 0)
            strcat(out, " ");
        strcat(out, words[i]);
    }
    return out;
}

/* Options before the host, the host, options right after it (as ssh allows), the command. */
static void parse_arguments(struct options *o, int argc, char **argv)
{
    int i = 1;
    while (i < argc) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) {
            i++;
            if (o->host != NULL)
                break;
            if (i < argc)
                o->host = argv[i++];
            break;
        }
        if (arg[0] == '-' && arg[1] != '\0') {
            i += parse_option_argument(o, &argv[i], argc - i);
            continue;
        }
        if (o->host != NULL)
            break;
        o->host = argv[i++];
    }
    if (o->host == NULL)
        usage();
    if (i == argc)
        die("a command is required (interactive sessions are not supported yet)");
    o->command = join_words(&argv[i], argc - i);

    const char *at = strrchr(o->host, '@');
    if (at != NULL) {
        if (o->user == NULL) {
            o->user = xstrdup(o->host);
            o->user[at - o->host] = '\0';
        }
        o->host = at + 1;
    }
}

/* Fills in ssh's defaults for everything not given. */
static void apply_defaults(struct options *o)
{
    if (o->user == NULL)
        o->user = default_user();
    set_int_once(&o->port, 22);
    if (o->known_hosts == NULL)
        o->known_hosts = expand_tilde("~/.ssh/known_hosts");
    if (o->strict == STRICT_UNSET)
        o->strict = STRICT_ASK;
    set_int_once(&o->batch_mode, 0);
    set_int_once(&o->compression, 0);
    set_int_once(&o->alive_interval, 0);
    set_int_once(&o->alive_count_max, 3);
    set_int_once(&o->password_auth, 1);
    set_int_once(&o->kbdint_auth, 1);
    set_int_once(&o->pubkey_auth, 1);
    set_int_once(&o->connect_timeout, 0);
    if (o->identity_count == 0) {
        static const char *const defaults[] = {"~/.ssh/id_ed25519", "~/.ssh/id_ecdsa",
                                               "~/.ssh/id_rsa"};
        for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
            char *path = expand_tilde(defaults[i]);
            if (access(path, F_OK) == 0 && o->identity_count < MAX_IDENTITIES)
                o->identities[o->identity_count++] = path;
            else
                free(path);
        }
    }
}

/* ---- host key ------------------------------------------------------------------------ */

static char *key_string(const ssh_pkey *key, char *(*get)(const ssh_pkey *))
{
    char *s = get(key);
    if (s == NULL)
        die_sekura("host key");
    return s;
}

static void add_known_host(const struct options *o, const ssh_pkey *key, const char *label)
{
    if (ssh_knownhosts_add(o->known_hosts, o->host, (uint16_t)o->port, key) != SSH_OK) {
        fprintf(stderr, "%s: could not add the host key to %s: %s\n", PROGRAM, o->known_hosts,
                sekura_last_error());
        return;
    }
    char *type = key_string(key, ssh_pkey_get_type);
    fprintf(stderr, "Warning: Permanently added '%s' (%s) to the list of known hosts.\n",
            label, type);
    sekura_string_free(type);
}

/* An unknown host key: accepted (and recorded) under no and accept-new, else refused. */
static int unknown_host_key(const struct options *o, const ssh_pkey *key, const char *label)
{
    if (o->strict == STRICT_NO || o->strict == STRICT_ACCEPT_NEW) {
        add_known_host(o, key, label);
        return 0;
    }
    char *type = key_string(key, ssh_pkey_get_type);
    char *fingerprint = key_string(key, ssh_pkey_get_fingerprint);
    if (o->strict == STRICT_YES) {
        fprintf(stderr,
                "No %s host key is known for %s and you have requested strict checking.\n",
                type, label);
    } else {
        fprintf(stderr,
                "The authenticity of host '%s' can't be established.\n"
                "%s key fingerprint is %s.\n"
                "%s cannot ask whether to trust it: add it to %s, or use "
                "-o StrictHostKeyChecking=accept-new.\n",
                label, type, fingerprint, PROGRAM, o->known_hosts);
    }
    sekura_string_free(type);
    sekura_string_free(fingerprint);
    return -1;
}

/* A changed host key: refused, except under StrictHostKeyChecking=no, where the connection
 * goes on, as in ssh, with only public key authentication. */
static int changed_host_key(const struct options *o, const ssh_pkey *key, const char *label,
                            int *secrets_allowed)
{
    char *type = key_string(key, ssh_pkey_get_type);
    char *fingerprint = key_string(key, ssh_pkey_get_fingerprint);
    fprintf(stderr,
            "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
            "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
            "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
            "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n"
            "The fingerprint for the %s key sent by the remote host is\n%s.\n"
            "The key for %s in %s is different.\n",
            type, fingerprint, label, o->known_hosts);
    sekura_string_free(type);
    sekura_string_free(fingerprint);
    if (o->strict != STRICT_NO) {
        fprintf(stderr, "Host key for %s has changed and you have requested strict checking.\n",
                label);
        return -1;
    }
    fprintf(stderr,
            "Password authentication is disabled to avoid man-in-the-middle attacks.\n"
            "Keyboard-interactive authentication is disabled to avoid man-in-the-middle "
            "attacks.\n");
    *secrets_allowed = 0;
    return 0;
}

/* Checks the server's key against known_hosts; exits 255 if it is not to be trusted.
 * Clears *secrets_allowed when passwords must not be sent to this server. */
static void verify_host_key(ssh_transport *t, const struct options *o, int *secrets_allowed)
{
    ssh_pkey *key = NULL;
    if (ssh_transport_get_remote_server_key(t, &key) != SSH_OK)
        die_sekura("host key");
    char label[300];
    host_label(label, sizeof label, o->host, o->port);

    int verdict = -1;
    int check = ssh_knownhosts_check(o->known_hosts, o->host, (uint16_t)o->port, key);
    switch (check) {
    case SSH_KNOWNHOSTS_MATCH:
        verdict = 0;
        break;
    case SSH_KNOWNHOSTS_NOT_FOUND:
        verdict = unknown_host_key(o, key, label);
        break;
    case SSH_KNOWNHOSTS_MISMATCH:
        verdict = changed_host_key(o, key, label, secrets_allowed);
        break;
    case SSH_KNOWNHOSTS_REVOKED:
        fprintf(stderr, "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
                        "@       WARNING: REVOKED HOST KEY DETECTED!               @\n"
                        "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
                        "The host key for %s is marked as revoked in %s.\n",
                label, o->known_hosts);
        break;
    default:
        fprintf(stderr, "%s: reading %s: %s\n", PROGRAM, o->known_hosts, sekura_last_error());
        break;
    }
    ssh_pkey_free(key);
    if (verdict != 0) {
        fprintf(stderr, "Host key verification failed.\n");
        exit(EXIT_FAILURE_SSH);
    }
}

/* ---- connection and authentication ---------------------------------------------------- */

static ssh_transport *connect_to_server(const struct options *o)
{
    int timeout_ms = o->connect_timeout > 0 ? o->connect_timeout * 1000 : -1;
    ssh_transport *t = ssh_transport_connect(o->host, (uint16_t)o->port, timeout_ms);
    if (t == NULL)
        die_sekura(NULL);
    for (int kind = 0; kind < 4; kind++) {
        if (o->algorithms[kind] != NULL &&
            ssh_transport_set_preferred(t, kind, o->algorithms[kind]) != SSH_OK)
            die_sekura("algorithms");
    }
    if (o->compression && ssh_transport_use_compression(t, true) != SSH_OK)
        die_sekura("compression");
    if (o->rekey_set == 1 &&
        ssh_transport_set_rekey_limits(t, (uint64_t)o->rekey_bytes, (uint32_t)o->rekey_seconds) !=
            SSH_OK)
        die_sekura("RekeyLimit");
    if (o->alive_interval > 0 &&
        ssh_transport_set_keepalive(t, (uint32_t)o->alive_interval,
                                    (uint32_t)o->alive_count_max) != SSH_OK)
        die_sekura("ServerAliveInterval");
    if (ssh_transport_start_client(t) != SSH_OK) {
        char what[320];
        snprintf(what, sizeof what, "handshake with %s port %d", o->host, o->port);
        die_sekura(what);
    }
    return t;
}

/* Authentication state: what the server still allows, as of the last refusal. */
struct auth {
    ssh_transport *t;
    const struct options *o;
    char *methods;
};

static void refresh_methods(struct auth *a)
{
    char *methods = NULL;
    if (ssh_transport_get_auth_methods(a->t, &methods, NULL) != SSH_OK)
        die_sekura("authentication");
    sekura_string_free(a->methods);
    a->methods = methods;
}

static int method_allowed(const struct auth *a, const char *method)
{
    size_t len = strlen(method);
    for (const char *p = a->methods; p != NULL && *p != '\0';) {
        size_t item = strcspn(p, ",");
        if (item == len && strncmp(p, method, len) == 0)
            return 1;
        p += item + (p[item] == ',');
    }
    return 0;
}

/* SSH_OK: authenticated; SSH_ERR_AUTH_DENIED: refused, try the next; else exits. */
static int auth_result(struct auth *a, int rc)
{
    if (rc == SSH_ERR_AUTH_DENIED)
        refresh_methods(a);
    else if (rc != SSH_OK)
        die_sekura("authentication");
    return rc;
}

static ssh_pkey *load_identity(const char *path)
{
    ssh_pkey *key = ssh_pkey_from_file(path, NULL);
    if (key != NULL)
        return key;
    int result = sekura_last_result();
    if (result == SSH_ERR_PASSWORD_REQUIRED)
        fprintf(stderr, "%s: skipping %s: it is encrypted and no passphrase can be asked for\n",
                PROGRAM, path);
    else if (result == SSH_ERR_IO)
        fprintf(stderr, "Warning: Identity file %s not accessible: %s\n", path,
                sekura_last_error());
    else
        fprintf(stderr, "Load key \"%s\": %s\n", path, sekura_last_error());
    return NULL;
}

static int try_publickey(struct auth *a)
{
    for (size_t i = 0; i < a->o->identity_count && method_allowed(a, "publickey"); i++) {
        ssh_pkey *key = load_identity(a->o->identities[i]);
        if (key == NULL)
            continue;
        int rc = auth_result(a, ssh_transport_auth_publickey(a->t, a->o->user, key));
        ssh_pkey_free(key);
        if (rc == SSH_OK)
            return SSH_OK;
    }
    return SSH_ERR_AUTH_DENIED;
}

/* Answers every prompt of every round with $SSHPASS; gives up after a few rounds, which
 * means the password is being asked again. */
static int answer_prompts(void *userdata, const char *name, const char *instruction,
                          size_t num_prompts, const char *const *prompts, const bool *echo,
                          ssh_kbdint_answers *answers)
{
    (void)name;
    (void)instruction;
    (void)prompts;
    (void)echo;
    static const int max_rounds_with_prompts = 2;
    int *rounds = userdata;
    if (num_prompts > 0 && ++*rounds > max_rounds_with_prompts)
        return 1;
    const char *password = getenv("SSHPASS");
    for (size_t i = 0; i < num_prompts; i++) {
        if (ssh_kbdint_answers_set(answers, i, password) != SSH_OK)
            return 1;
    }
    return 0;
}

static int try_keyboard_interactive(struct auth *a)
{
    int rounds = 0;
    int rc = ssh_transport_auth_interactive(a->t, a->o->user, answer_prompts, &rounds);
    return auth_result(a, rc);
}

static int try_password(struct auth *a)
{
    const char *password = getenv("SSHPASS");
    return auth_result(a, ssh_transport_auth_password(a->t, a->o->user, password));
}

/* ssh's order: none (to learn the methods), publickey, keyboard-interactive, password. */
static void authenticate(ssh_transport *t, const struct options *o, int secrets_allowed)
{
    struct auth a = {t, o, NULL};
    if (auth_result(&a, ssh_transport_auth_none(t, o->user)) == SSH_OK)
        return;
    int passwords = secrets_allowed && !o->batch_mode && getenv("SSHPASS") != NULL;
    int rc = SSH_ERR_AUTH_DENIED;
    if (o->pubkey_auth && method_allowed(&a, "publickey"))
        rc = try_publickey(&a);
    if (rc != SSH_OK && passwords && o->kbdint_auth && method_allowed(&a, "keyboard-interactive"))
        rc = try_keyboard_interactive(&a);
    if (rc != SSH_OK && passwords && o->password_auth && method_allowed(&a, "password"))
        rc = try_password(&a);
    if (rc != SSH_OK) {
        fprintf(stderr, "%s@%s: Permission denied (%s).\n", o->user, o->host,
                a.methods != NULL ? a.methods : "");
        exit(EXIT_FAILURE_SSH);
    }
    sekura_string_free(a.methods);
}

/* ---- the session ---------------------------------------------------------------------- */

struct session {
    ssh_channel *channel;
    int stop_pipe[2]; /* written to when the stdin pump must stop */
};

/* Sends local stdin to the command, then EOF; stops early when asked or the channel ends. */
static void *pump_stdin(void *arg)
{
    struct session *s = arg;
    uint8_t buf[32768];
    struct pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {s->stop_pipe[0], POLLIN, 0}};
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (fds[1].revents != 0)
            return NULL;
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            break;
        if (ssh_channel_sendall(s->channel, buf, (size_t)n) != SSH_OK)
            return NULL;
    }
    ssh_channel_send_eof(s->channel);
    return NULL;
}

typedef ssize_t (*receive_fn)(ssh_channel *, uint8_t *, size_t);

/* Copies one of the command's streams to fd until EOF. If fd stops taking output (a reader
 * closed the pipe), the channel is closed, which ends the command, as ssh does. */
static void copy_stream(ssh_channel *channel, receive_fn receive, int fd)
{
    uint8_t buf[32768];
    for (;;) {
        ssize_t n = receive(channel, buf, sizeof buf);
        if (n <= 0)
            return;
        if (write_all(fd, buf, (size_t)n) != 0) {
            if (errno != EPIPE)
                fprintf(stderr, "%s: write: %s\n", PROGRAM, strerror(errno));
            ssh_channel_close(channel);
            return;
        }
    }
}

static void *pump_stderr(void *arg)
{
    copy_stream(arg, ssh_channel_recv_stderr, STDERR_FILENO);
    return NULL;
}

/* The process exit code for how the command ended. */
static int command_exit_code(ssh_channel *channel)
{
    int status = 0;
    int rc = ssh_channel_recv_exit_status(channel, &status);
    if (rc == SSH_OK)
        return status & 0xff;
    if (rc != SSH_ERR_EXIT_SIGNAL && rc != SSH_ERR_NO_EXIT_STATUS)
        fprintf(stderr, "%s: %s\n", PROGRAM, sekura_last_error());
    return EXIT_FAILURE_SSH;
}

/* Runs the command; returns its exit code (255 if it had none). */
static int run_command(ssh_transport *t, const struct options *o)
{
    struct session s = {NULL, {-1, -1}};
    s.channel = ssh_transport_open_session(t);
    if (s.channel == NULL)
        die_sekura("open session");
    if (ssh_channel_exec(s.channel, o->command) != SSH_OK)
        die_sekura("exec");

    pthread_t in_thread, err_thread;
    int pumping_stdin = !o->stdin_null;
    if (pumping_stdin && (pipe(s.stop_pipe) != 0 ||
                          pthread_create(&in_thread, NULL, pump_stdin, &s) != 0))
        die("cannot start the stdin thread");
    if (!pumping_stdin)
        ssh_channel_send_eof(s.channel);
    if (pthread_create(&err_thread, NULL, pump_stderr, s.channel) != 0)
        die("cannot start the stderr thread");

    copy_stream(s.channel, ssh_channel_recv, STDOUT_FILENO);
    pthread_join(err_thread, NULL);
    int code = command_exit_code(s.channel);

    if (pumping_stdin) {
        /* The command is over: stop reading stdin (which may never end), and close the
         * channel so that a send blocked on a full window returns. */
        if (write(s.stop_pipe[1], "x", 1) < 0)
            perror(PROGRAM ": write");
        ssh_channel_close(s.channel);
        pthread_join(in_thread, NULL);
        close(s.stop_pipe[0]);
        close(s.stop_pipe[1]);
    }
    ssh_channel_free(s.channel);
    return code;
}

int main(int argc, char **argv)
{
    struct options o;
    options_init(&o);
    parse_arguments(&o, argc, argv);
    apply_defaults(&o);
    /* A closed stdout must give EPIPE, not kill the process. */
    signal(SIGPIPE, SIG_IGN);

    ssh_transport *t = connect_to_server(&o);
    int secrets_allowed = 1;
    verify_host_key(t, &o, &secrets_allowed);
    authenticate(t, &o, secrets_allowed);
    int code = run_command(t, &o);

    ssh_transport_close(t);
    ssh_transport_free(t);
    options_free(&o);
    return code;
}
