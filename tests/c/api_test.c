/*
 * api_test: calls the functions of sekura.h, through the shared library, as a C program
 * would, with NULL and for real. tests/c_programs.rs builds it and runs it against a
 * private sshd.
 *
 *   api_test HOST PORT USER KEY UNAUTHORIZED_KEY ENCRYPTED_KEY PASSPHRASE KNOWN_HOSTS
 *
 * KEY is authorized for USER, UNAUTHORIZED_KEY is not, ENCRYPTED_KEY is KEY's kind of key
 * encrypted with PASSPHRASE, KNOWN_HOSTS lists the server's host keys. SSH_AUTH_SOCK must
 * name an ssh-agent holding KEY (an Ed25519 key).
 *
 * The key functions (ssh_pkey_*) are tested by keys_test.c.
 */
#define _POSIX_C_SOURCE 200809L

#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

struct config {
    const char *host;
    uint16_t port;
    const char *user;
    const char *key;
    const char *unauthorized_key;
    const char *encrypted_key;
    const char *passphrase;
    const char *known_hosts;
};

/* ---- the library as a whole ----------------------------------------------------------- */

static void *fresh_thread_state(void *arg)
{
    int *ok = arg;
    *ok = sekura_last_result() == SSH_OK && strcmp(sekura_last_error(), "") == 0;
    return NULL;
}

static void *fail_in_other_thread(void *arg)
{
    (void)arg;
    ssh_channel_close(NULL);
    return NULL;
}

static void test_library(void)
{
    int fresh = 0;
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, fresh_thread_state, &fresh) == 0);
    pthread_join(thread, NULL);
    CHECK(fresh);

    CHECK(strcmp(sekura_version(), SEKURA_VERSION_STRING) == 0);
    char numbers[64];
    snprintf(numbers, sizeof numbers, "%d.%d.%d", SEKURA_VERSION_MAJOR, SEKURA_VERSION_MINOR,
             SEKURA_VERSION_PATCH);
    CHECK(strcmp(numbers, SEKURA_VERSION_STRING) == 0);

    CHECK(strcmp(sekura_result_str(12345), "unknown result") == 0);
    for (int code = SSH_OK; code >= SSH_ERR_BUFFER_FULL; code--)
        check_at(sekura_result_str(code) != NULL &&
                     strcmp(sekura_result_str(code), "unknown result") != 0,
                 "sekura_result_str knows every code", __LINE__);

    /* The last error is per thread: a failure elsewhere leaves this thread's alone. */
    CHECK_FAILS(ssh_transport_close(NULL), SSH_ERR_INVALID_ARG);
    CHECK(pthread_create(&thread, NULL, fail_in_other_thread, NULL) == 0);
    pthread_join(thread, NULL);
    CHECK(sekura_last_result() == SSH_ERR_INVALID_ARG);
    CHECK(strstr(sekura_last_error(), "transport") != NULL);

    sekura_string_free(NULL);
}

/* ---- NULL everywhere ------------------------------------------------------------------- */

static int refuse_prompts(void *userdata, const char *name, const char *instruction,
                          size_t num_prompts, const char *const *prompts, const bool *echo,
                          ssh_kbdint_answers *answers)
{
    (void)userdata;
    (void)name;
    (void)instruction;
    (void)num_prompts;
    (void)prompts;
    (void)echo;
    (void)answers;
    return 1;
}

static void test_null_transport(void)
{
    ssh_pkey *key = (ssh_pkey *)&failures; /* a sentinel: must not be overwritten */
    char *methods = (char *)&failures;
    bool partial = true;

    CHECK_NULL(ssh_transport_connect(NULL, 22, 1000), SSH_ERR_INVALID_ARG);
    CHECK_NULL(ssh_transport_new(-1), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_set_timeout(NULL, 1000), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_set_preferred(NULL, SSH_ALG_CIPHER, "aes128-ctr"),
                SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_start_client(NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_get_remote_server_key(NULL, &key), SSH_ERR_INVALID_ARG);
    CHECK(key == (ssh_pkey *)&failures);
    CHECK_FAILS(ssh_transport_auth_none(NULL, "user"), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_auth_password(NULL, "user", "pw"), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_auth_publickey(NULL, "user", NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_auth_agent(NULL, "user", NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_kbdint_answers_set(NULL, 0, "answer"), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_auth_interactive(NULL, "user", refuse_prompts, NULL),
                SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_get_auth_methods(NULL, &methods, &partial), SSH_ERR_INVALID_ARG);
    CHECK(methods == (char *)&failures && partial);
    CHECK(!ssh_transport_is_active(NULL));
    CHECK(!ssh_transport_is_authenticated(NULL));
    CHECK_NULL(ssh_transport_open_session(NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_get_preferred(NULL, SSH_ALG_CIPHER, &methods),
                SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_get_supported(SSH_ALG_CIPHER, NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_get_supported(99, &methods), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_use_compression(NULL, true), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_renegotiate_keys(NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_set_rekey_limits(NULL, 0, 0), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_set_keepalive(NULL, 0, 0), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_send_ignore(NULL, 8), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_global_request(NULL, "x@example.org", NULL, 0, false, NULL, NULL),
                SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_get_banner(NULL, &methods), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_get_username(NULL, &methods), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_getpeername(NULL, &methods, NULL), SSH_ERR_INVALID_ARG);
    CHECK(methods == (char *)&failures);
    CHECK_FAILS(ssh_transport_disconnect(NULL, 11, NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_set_log_name(NULL, "name"), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_set_hexdump(NULL, true), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_close(NULL), SSH_ERR_INVALID_ARG);
    ssh_transport_free(NULL);
}

static void test_null_known_hosts(const struct config *c)
{
    CHECK_FAILS(ssh_knownhosts_check(NULL, "host", 22, NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_knownhosts_check(c->known_hosts, NULL, 22, NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_knownhosts_add(NULL, "host", 22, NULL), SSH_ERR_INVALID_ARG);
}

static void test_null_channel(void)
{
    uint8_t buf[16] = {0};
    int status = 12345;
    char *signal_name = (char *)&failures;

    CHECK_FAILS(ssh_channel_settimeout(NULL, 0), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_channel_set_stderr_mode(NULL, SSH_STDERR_MERGE), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_channel_set_buffer_limit(NULL, 0), SSH_ERR_INVALID_ARG);
    CHECK(!ssh_channel_send_ready(NULL));
    CHECK_FAILS(ssh_channel_exec(NULL, "true"), SSH_ERR_INVALID_ARG);
    int fd = -7;
    CHECK_FAILS(ssh_channel_fileno(NULL, &fd), SSH_ERR_INVALID_ARG);
    CHECK(fd == -7);
    CHECK_FAILS(ssh_channel_recv(NULL, buf, sizeof buf), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_channel_recv_stderr(NULL, buf, sizeof buf), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_channel_send(NULL, buf, sizeof buf), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_channel_sendall(NULL, buf, sizeof buf), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_channel_send_eof(NULL), SSH_ERR_INVALID_ARG);
    CHECK(!ssh_channel_exit_status_ready(NULL));
    CHECK_FAILS(ssh_channel_recv_exit_status(NULL, &status), SSH_ERR_INVALID_ARG);
    CHECK(status == 12345);
    CHECK_FAILS(ssh_channel_get_exit_signal(NULL, &signal_name), SSH_ERR_INVALID_ARG);
    CHECK(signal_name == (char *)&failures);
    CHECK_FAILS(ssh_channel_close(NULL), SSH_ERR_INVALID_ARG);
    ssh_channel_free(NULL);
}

static void test_null_hostkeys(void)
{
    ssh_pkey *key = (ssh_pkey *)&failures;
    char *hashed = (char *)&failures;

    CHECK_FAILS(ssh_hostkeys_load(NULL, "/dev/null"), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_hostkeys_load_system(NULL, "/dev/null"), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_hostkeys_check(NULL, "host", 22, NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_hostkeys_add(NULL, "host", 22, NULL, false), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_hostkeys_remove(NULL, "host", 22), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_hostkeys_save(NULL, "/dev/null"), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_hostkeys_count(NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_hostkeys_lookup(NULL, "host", 22, 0, &key), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_hostkeys_lookup_ca(NULL, "host", 22, 0, &key), SSH_ERR_INVALID_ARG);
    CHECK(key == (ssh_pkey *)&failures);
    CHECK_FAILS(ssh_hostkeys_hash_host(NULL, &hashed), SSH_ERR_INVALID_ARG);
    CHECK(hashed == (char *)&failures);
    ssh_hostkeys_free(NULL);
}

static void test_null_agent(void)
{
    ssh_pkey *key = (ssh_pkey *)&failures;
    uint8_t *sig = (uint8_t *)&failures;
    size_t sig_len = 12345;
    static const uint8_t data[] = "data";

    CHECK_NULL(ssh_agent_connect("/nonexistent/sekura/agent.sock"), SSH_ERR_IO);
    CHECK(strstr(sekura_last_error(), "ssh-agent unavailable") == sekura_last_error());
    CHECK_FAILS(ssh_agent_set_timeout(NULL, 1000), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_agent_count_identities(NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_agent_get_identity(NULL, 0, &key, NULL), SSH_ERR_INVALID_ARG);
    CHECK(key == (ssh_pkey *)&failures);
    CHECK_FAILS(ssh_agent_sign(NULL, NULL, "ssh-ed25519", data, sizeof data, &sig, &sig_len),
                SSH_ERR_INVALID_ARG);
    CHECK(sig == (uint8_t *)&failures && sig_len == 12345);
    ssh_agent_free(NULL);
    sekura_bytes_free(NULL, 0);
}

/* ---- keys and known_hosts --------------------------------------------------------------- */

/* known_hosts: the given file matches; a fresh file knows nothing until the key is added; a
 * file with another key of the same type for the host reports a mismatch. */
static void test_known_hosts(const struct config *c, const ssh_pkey *host_key)
{
    CHECK(ssh_knownhosts_check(c->known_hosts, c->host, c->port, host_key) ==
          SSH_KNOWNHOSTS_MATCH);

    char dir[] = "/tmp/sekura-api-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char fresh[64], other[64];
    snprintf(fresh, sizeof fresh, "%s/known_hosts", dir);
    snprintf(other, sizeof other, "%s/other", dir);

    CHECK(ssh_knownhosts_check(fresh, c->host, c->port, host_key) == SSH_KNOWNHOSTS_NOT_FOUND);
    CHECK(ssh_knownhosts_add(fresh, c->host, c->port, host_key) == SSH_OK);
    CHECK(ssh_knownhosts_check(fresh, c->host, c->port, host_key) == SSH_KNOWNHOSTS_MATCH);
    CHECK(ssh_knownhosts_check(fresh, c->host, (uint16_t)(c->port + 1), host_key) ==
          SSH_KNOWNHOSTS_NOT_FOUND);

    ssh_pkey *user_key = ssh_pkey_from_file(c->key, NULL);
    char *user_type = ssh_pkey_get_type(user_key);
    char *host_type = ssh_pkey_get_type(host_key);
    CHECK(ssh_knownhosts_add(other, c->host, c->port, user_key) == SSH_OK);
    /* Known by another key (of any type): a possible attack, as OpenSSH says too. */
    CHECK(user_type != NULL && host_type != NULL);
    CHECK(ssh_knownhosts_check(other, c->host, c->port, host_key) == SSH_KNOWNHOSTS_MISMATCH);
    sekura_string_free(user_type);
    sekura_string_free(host_type);
    ssh_pkey_free(user_key);

    unlink(fresh);
    unlink(other);
    rmdir(dir);
}

/* Known hosts as a set: load, check, look up, add hashed, save, load again, remove. */
static void test_hostkeys(const struct config *c, const ssh_pkey *host_key)
{
    ssh_hostkeys *hk = ssh_hostkeys_new();
    CHECK(hk != NULL);
    CHECK(ssh_hostkeys_load(hk, c->known_hosts) == SSH_OK);
    CHECK(ssh_hostkeys_load_system(hk, "/nonexistent/sekura/ssh_known_hosts") == SSH_OK);
    CHECK(ssh_hostkeys_count(hk) >= 1);
    CHECK(ssh_hostkeys_check(hk, c->host, c->port, host_key) == SSH_KNOWNHOSTS_MATCH);
    int found = 0;
    ssh_pkey *key = NULL;
    for (size_t i = 0; ssh_hostkeys_lookup(hk, c->host, c->port, i, &key) == SSH_OK; i++) {
        found++;
        ssh_pkey_free(key);
    }
    CHECK(found >= 1 && sekura_last_result() == SSH_ERR_EOF);
    key = NULL;
    CHECK_FAILS(ssh_hostkeys_lookup_ca(hk, c->host, c->port, 0, &key), SSH_ERR_EOF);
    CHECK(key == NULL);
    ssh_hostkeys_free(hk);

    char label[64], *hashed = NULL;
    snprintf(label, sizeof label, "[%s]:%u", c->host, (unsigned)c->port);
    CHECK(ssh_hostkeys_hash_host(label, &hashed) == SSH_OK && starts_with(hashed, "|1|"));
    sekura_string_free(hashed);

    char dir[] = "/tmp/sekura-api-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[64];
    snprintf(path, sizeof path, "%s/known_hosts", dir);
    hk = ssh_hostkeys_new();
    CHECK_FAILS(ssh_hostkeys_add(hk, "bad host", c->port, host_key, false), SSH_ERR_INVALID_ARG);
    CHECK(ssh_hostkeys_add(hk, c->host, c->port, host_key, true) == SSH_OK);
    CHECK(ssh_hostkeys_check(hk, c->host, c->port, host_key) == SSH_KNOWNHOSTS_MATCH);
    CHECK(ssh_hostkeys_save(hk, path) == SSH_OK);
    ssh_hostkeys_free(hk);

    hk = ssh_hostkeys_new();
    CHECK(ssh_hostkeys_load(hk, path) == SSH_OK);
    CHECK(ssh_hostkeys_count(hk) == 1);
    CHECK(ssh_hostkeys_check(hk, c->host, c->port, host_key) == SSH_KNOWNHOSTS_MATCH);
    CHECK(ssh_hostkeys_remove(hk, c->host, c->port) == 1);
    CHECK(ssh_hostkeys_count(hk) == 0);
    CHECK(ssh_hostkeys_check(hk, c->host, c->port, host_key) == SSH_KNOWNHOSTS_NOT_FOUND);
    ssh_hostkeys_free(hk);
    unlink(path);
    rmdir(dir);
}

/* The ssh-agent named by SSH_AUTH_SOCK, holding the Ed25519 user key. */
static void test_agent(void)
{
    CHECK(getenv("SSH_AUTH_SOCK") != NULL);
    ssh_agent *agent = ssh_agent_connect(NULL);
    CHECK(agent != NULL);
    if (agent == NULL)
        return;
    CHECK(ssh_agent_set_timeout(agent, 10000) == SSH_OK);
    CHECK_FAILS(ssh_agent_set_timeout(agent, 0), SSH_ERR_INVALID_ARG);
    int count = ssh_agent_count_identities(agent);
    CHECK(count >= 1);

    ssh_pkey *key = NULL;
    char *comment = NULL;
    CHECK(ssh_agent_get_identity(agent, 0, &key, &comment) == SSH_OK);
    CHECK(key != NULL && comment != NULL);
    sekura_string_free(comment);
    ssh_pkey *past_end = NULL;
    CHECK_FAILS(ssh_agent_get_identity(agent, (size_t)count, &past_end, NULL), SSH_ERR_EOF);
    CHECK(past_end == NULL);

    static const uint8_t data[] = "data to sign";
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    CHECK(ssh_agent_sign(agent, key, "ssh-ed25519", data, sizeof data, &sig, &sig_len) ==
          SSH_OK);
    CHECK(sig != NULL && sig_len > 64);
    sekura_bytes_free(sig, sig_len);
    CHECK_FAILS(ssh_agent_sign(agent, key, "rsa-sha2-512", data, sizeof data, &sig, &sig_len),
                SSH_ERR_INVALID_ARG);
    ssh_pkey_free(key);
    ssh_agent_free(agent);
}

/* ---- a connection ---------------------------------------------------------------------- */

/* Reads a stream to EOF into out (NUL-terminated, truncated to size). */
static ssize_t read_all(ssh_channel *ch, ssize_t (*receive)(ssh_channel *, uint8_t *, size_t),
                        char *out, size_t size)
{
    size_t used = 0;
    for (;;) {
        uint8_t buf[256];
        ssize_t n = receive(ch, buf, sizeof buf);
        if (n < 0)
            return n;
        if (n == 0)
            break;
        size_t take = (size_t)n < size - 1 - used ? (size_t)n : size - 1 - used;
        memcpy(out + used, buf, take);
        used += take;
    }
    out[used] = '\0';
    return (ssize_t)used;
}

static void test_authentication(ssh_transport *t, const struct config *c)
{
    char *methods = NULL;
    bool partial = true;

    CHECK(ssh_transport_get_auth_methods(t, &methods, &partial) != SSH_OK);
    CHECK(ssh_transport_auth_none(t, c->user) == SSH_ERR_AUTH_DENIED);
    CHECK(ssh_transport_get_auth_methods(t, &methods, &partial) == SSH_OK);
    CHECK(methods != NULL && strstr(methods, "publickey") != NULL);
    CHECK(!partial);
    sekura_string_free(methods);

    CHECK(ssh_transport_auth_password(t, c->user, "not the password") == SSH_ERR_AUTH_DENIED);
    CHECK_FAILS(ssh_transport_auth_interactive(t, c->user, NULL, NULL), SSH_ERR_INVALID_ARG);
    int rc = ssh_transport_auth_interactive(t, c->user, refuse_prompts, NULL);
    CHECK(rc == SSH_ERR_AUTH_DENIED);
    CHECK_FAILS(ssh_transport_auth_publickey(t, c->user, NULL), SSH_ERR_INVALID_ARG);

    ssh_pkey *stranger = ssh_pkey_from_file(c->unauthorized_key, NULL);
    CHECK(ssh_transport_auth_publickey(t, c->user, stranger) == SSH_ERR_AUTH_DENIED);
    ssh_pkey_free(stranger);
    CHECK(!ssh_transport_is_authenticated(t));

    /* The agent (SSH_AUTH_SOCK) holds the authorized user key: it signs, we never see it. */
    CHECK_FAILS(ssh_transport_auth_agent(t, c->user, NULL), SSH_ERR_INVALID_ARG);
    ssh_agent *agent = ssh_agent_connect(NULL);
    CHECK(agent != NULL);
    CHECK(ssh_transport_auth_agent(t, c->user, agent) == SSH_OK);
    ssh_agent_free(agent);
    CHECK(ssh_transport_is_authenticated(t));
}

/* echo hello: output, EOF, exit status 0, no signal; the channel cannot exec twice. */
static void test_echo(ssh_transport *t)
{
    ssh_channel *ch = ssh_transport_open_session(t);
    CHECK(ch != NULL);
    CHECK(ssh_channel_settimeout(ch, 20000) == SSH_OK);
    CHECK(ssh_channel_exec(ch, "echo hello") == SSH_OK);
    char out[64];
    CHECK(read_all(ch, ssh_channel_recv, out, sizeof out) == 6);
    CHECK(strcmp(out, "hello\n") == 0);
    int status = -1;
    CHECK(ssh_channel_recv_exit_status(ch, &status) == SSH_OK);
    CHECK(status == 0);
    CHECK(ssh_channel_exit_status_ready(ch));
    char *signal_name = NULL;
    CHECK(ssh_channel_get_exit_signal(ch, &signal_name) != SSH_OK && signal_name == NULL);
    CHECK(ssh_channel_exec(ch, "echo again") != SSH_OK);
    CHECK(ssh_channel_close(ch) == SSH_OK);
    ssh_channel_free(ch);
}

/* A remote forward, reached through a direct-tcpip channel: sshd connects the direct
 * channel to the port it listens on for us, and hands that connection back as a
 * forwarded-tcpip channel. */
static void test_port_forward(ssh_transport *t)
{
    uint32_t port = 0;
    CHECK_FAILS(ssh_transport_set_channel_limits(NULL, 65536, 8192), SSH_ERR_INVALID_ARG);
    /* The forwarded channels below open with these. */
    CHECK(ssh_transport_set_channel_limits(t, 65536, 8192) == SSH_OK);
    CHECK_FAILS(ssh_transport_request_port_forward(t, NULL, 0, &port), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_request_port_forward(t, "127.0.0.1", 0, NULL), SSH_ERR_INVALID_ARG);
    CHECK_NULL(ssh_transport_open_direct_tcpip(t, NULL, 22, "127.0.0.1", 1), SSH_ERR_INVALID_ARG);
    CHECK_NULL(ssh_transport_open_forwarded_tcpip(NULL, "127.0.0.1", 1, "127.0.0.1", 2),
               SSH_ERR_INVALID_ARG);
    CHECK(ssh_transport_request_port_forward(t, "127.0.0.1", 0, &port) == SSH_OK);
    CHECK(port > 0);
    ssh_channel *out = ssh_transport_open_direct_tcpip(t, "127.0.0.1", port, "127.0.0.1", 4242);
    CHECK(out != NULL);
    ssh_channel *in = ssh_transport_accept(t, 20000);
    CHECK(in != NULL);
    if (out != NULL && in != NULL) {
        CHECK(ssh_channel_settimeout(in, 20000) == SSH_OK);
        CHECK(ssh_channel_sendall(out, (const uint8_t *)"around", 6) == SSH_OK);
        CHECK(ssh_channel_send_eof(out) == SSH_OK);
        char got[16];
        CHECK(read_all(in, ssh_channel_recv, got, sizeof got) == 6);
        CHECK(strcmp(got, "around") == 0);
    }
    ssh_channel_free(in);
    ssh_channel_free(out);
    CHECK(ssh_transport_cancel_port_forward(t, "127.0.0.1", port) == SSH_OK);
    CHECK_FAILS(ssh_transport_cancel_port_forward(t, "127.0.0.1", port), SSH_ERR_REFUSED);
    CHECK_NULL(ssh_transport_open_direct_tcpip(t, "127.0.0.1", port, "127.0.0.1", 4243),
               SSH_ERR_REFUSED);
    CHECK(ssh_transport_set_channel_limits(t, 2 * 1024 * 1024, 32768) == SSH_OK);
}

/* Input in, both output streams out, a non-zero exit status. */
static void test_streams(ssh_transport *t)
{
    ssh_channel *ch = ssh_transport_open_session(t);
    CHECK(ch != NULL);
    CHECK(ssh_channel_exec(ch, "cat; echo to-stderr >&2; exit 7") == SSH_OK);
    static const uint8_t first[] = "ping ";
    static const uint8_t second[] = "pong\n";
    ssize_t sent = ssh_channel_send(ch, first, sizeof first - 1);
    CHECK(sent > 0 && sent <= (ssize_t)(sizeof first - 1));
    if (sent > 0 && sent < (ssize_t)(sizeof first - 1))
        CHECK(ssh_channel_sendall(ch, first + sent, sizeof first - 1 - (size_t)sent) == SSH_OK);
    CHECK(ssh_channel_sendall(ch, second, sizeof second - 1) == SSH_OK);
    CHECK(ssh_channel_send_eof(ch) == SSH_OK);
    char out[64], err[64];
    CHECK(read_all(ch, ssh_channel_recv, out, sizeof out) >= 0);
    CHECK(strcmp(out, "ping pong\n") == 0);
    CHECK(read_all(ch, ssh_channel_recv_stderr, err, sizeof err) >= 0);
    CHECK(strcmp(err, "to-stderr\n") == 0);
    int status = -1;
    CHECK(ssh_channel_recv_exit_status(ch, &status) == SSH_OK);
    CHECK(status == 7);
    ssh_channel_free(ch);
}

/* The channel's descriptor is readable while the channel has something new to report: data,
 * an EOF no read returned yet, an exit status or a close not yet seen. */
static void test_poll(ssh_transport *t)
{
    ssh_channel *ch = ssh_transport_open_session(t);
    CHECK(ch != NULL);
    CHECK_FAILS(ssh_channel_settimeout(ch, -7), SSH_ERR_INVALID_ARG);
    CHECK(ssh_channel_settimeout(ch, 0) == SSH_OK);
    CHECK_FAILS(ssh_channel_set_stderr_mode(ch, 9), SSH_ERR_INVALID_ARG);
    /* The command closes its output, then lives on for a while before it exits. */
    CHECK(ssh_channel_exec(ch, "read line; echo got-$line; exec >&- 2>&-; sleep 1; exit 4") ==
          SSH_OK);
    CHECK(ssh_channel_send_ready(ch));
    int fd = -1, again = -2;
    CHECK(ssh_channel_fileno(ch, &fd) == SSH_OK && fd >= 0);
    CHECK(ssh_channel_fileno(ch, &again) == SSH_OK && again == fd);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CHECK(poll(&p, 1, 300) == 0); /* the command waits for its input */
    uint8_t buf[64];
    CHECK(ssh_channel_recv(ch, buf, sizeof buf) == SSH_ERR_AGAIN);
    static const uint8_t line[] = "x\n";
    CHECK(ssh_channel_sendall(ch, line, sizeof line - 1) == SSH_OK);
    CHECK(poll(&p, 1, 20000) == 1 && (p.revents & POLLIN));
    char out[64] = {0};
    size_t got = 0;
    for (;;) {
        CHECK(poll(&p, 1, 20000) == 1);
        ssize_t n = ssh_channel_recv(ch, (uint8_t *)out + got, sizeof out - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    CHECK(strcmp(out, "got-x\n") == 0);
    CHECK(poll(&p, 1, 300) == 0); /* the EOF was taken: quiet until the exit status */
    CHECK(poll(&p, 1, 20000) == 1 && (p.revents & POLLIN));
    CHECK(ssh_channel_exit_status_ready(ch));
    int status = -1;
    CHECK(ssh_channel_recv_exit_status(ch, &status) == SSH_OK && status == 4);
    ssh_channel_free(ch);
}

/* A command killed by a signal has no exit status but a signal name. */
static void test_signal(ssh_transport *t)
{
    ssh_channel *ch = ssh_transport_open_session(t);
    CHECK(ch != NULL);
    CHECK(ssh_channel_exec(ch, "kill -TERM $$") == SSH_OK);
    int status = 12345;
    CHECK_FAILS(ssh_channel_recv_exit_status(ch, &status), SSH_ERR_EXIT_SIGNAL);
    CHECK(status == 12345);
    char *signal_name = NULL;
    CHECK(ssh_channel_get_exit_signal(ch, &signal_name) == SSH_OK);
    CHECK(signal_name != NULL && strcmp(signal_name, "TERM") == 0);
    sekura_string_free(signal_name);
    ssh_channel_free(ch);
}

/* Timeouts per channel: 0 does not wait, n waits n ms, -1 waits for the data. */
static void test_timeouts(ssh_transport *t)
{
    ssh_channel *ch = ssh_transport_open_session(t);
    CHECK(ch != NULL);
    CHECK(ssh_channel_exec(ch, "sleep 2; echo late") == SSH_OK);
    uint8_t buf[64];
    CHECK(ssh_channel_settimeout(ch, 0) == SSH_OK);
    CHECK_FAILS(ssh_channel_recv(ch, buf, sizeof buf), SSH_ERR_AGAIN);
    CHECK(!ssh_channel_exit_status_ready(ch));
    CHECK(ssh_channel_settimeout(ch, 100) == SSH_OK);
    CHECK_FAILS(ssh_channel_recv(ch, buf, sizeof buf), SSH_ERR_TIMEOUT);
    CHECK(ssh_channel_settimeout(ch, -1) == SSH_OK);
    char out[64];
    CHECK(read_all(ch, ssh_channel_recv, out, sizeof out) == 5);
    CHECK(strcmp(out, "late\n") == 0);
    ssh_channel_free(ch);
}

/* After the transport closes, its channels answer SSH_ERR_CLOSED and can still be freed. */
static void test_close(ssh_transport *t)
{
    ssh_channel *ch = ssh_transport_open_session(t);
    CHECK(ch != NULL);
    CHECK(ssh_transport_close(t) == SSH_OK);
    CHECK(!ssh_transport_is_active(t));
    CHECK_FAILS(ssh_channel_exec(ch, "true"), SSH_ERR_CLOSED);
    CHECK_NULL(ssh_transport_open_session(t), SSH_ERR_CLOSED);
    ssh_transport_free(t);
    uint8_t buf[16];
    CHECK_FAILS(ssh_channel_recv(ch, buf, sizeof buf), SSH_ERR_CLOSED);
    CHECK_FAILS(ssh_channel_send_eof(ch), SSH_ERR_CLOSED);
    ssh_channel_free(ch);
}

/* What the transport knows after authentication, and transport-level messages. */
static void test_session_facts(ssh_transport *t, const struct config *c)
{
    char *text = NULL;
    CHECK(ssh_transport_get_username(t, &text) == SSH_OK);
    CHECK(text != NULL && strcmp(text, c->user) == 0);
    sekura_string_free(text);
    uint16_t port = 0;
    text = NULL;
    CHECK(ssh_transport_getpeername(t, &text, &port) == SSH_OK);
    CHECK(text != NULL && strcmp(text, "127.0.0.1") == 0 && port == c->port);
    sekura_string_free(text);
    text = NULL;
    CHECK_FAILS(ssh_transport_get_banner(t, &text), SSH_ERR_STATE);
    CHECK(text == NULL);

    CHECK(ssh_transport_send_ignore(t, 32) == SSH_OK);
    CHECK(ssh_transport_renegotiate_keys(t) == SSH_OK);
    /* OpenSSH refuses global requests it does not know. */
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    CHECK_FAILS(ssh_transport_global_request(t, "unknown@sekura.example", NULL, 0, true, &reply,
                                             &reply_len),
                SSH_ERR_REFUSED);
    CHECK(reply == NULL);
    CHECK(ssh_transport_global_request(t, "unknown@sekura.example", NULL, 0, false, NULL,
                                       NULL) == SSH_OK);
}

/* Log messages seen by record_log, from any thread: all, and those of the "api-test" logger. */
static atomic_int log_messages;
static atomic_int named_log_messages;

static void record_log(void *userdata, int level, const char *logger, const char *message)
{
    (void)userdata;
    (void)message;
    if (level >= SEKURA_LOG_ERROR && level <= SEKURA_LOG_TRACE)
        atomic_fetch_add(&log_messages, 1);
    if (strcmp(logger, "api-test") == 0)
        atomic_fetch_add(&named_log_messages, 1);
}

static void test_connection(const struct config *c)
{
    sekura_set_log_callback(SEKURA_LOG_DEBUG, record_log, NULL);
    ssh_transport *t = ssh_transport_connect(c->host, c->port, 20000);
    CHECK(t != NULL);
    if (t == NULL)
        return;
    CHECK(ssh_transport_set_log_name(t, "api-test") == SSH_OK);
    CHECK_FAILS(ssh_transport_set_log_name(t, NULL), SSH_ERR_INVALID_ARG);
    CHECK(ssh_transport_set_hexdump(t, false) == SSH_OK);
    CHECK(ssh_transport_set_timeout(t, 20000) == SSH_OK);
    CHECK_FAILS(ssh_transport_set_preferred(t, 99, "aes128-ctr"), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_transport_set_preferred(t, SSH_ALG_CIPHER, "no-such-cipher"),
                SSH_ERR_INVALID_ARG);
    static const char ciphers[] = "aes256-gcm@openssh.com,chacha20-poly1305@openssh.com";
    CHECK(ssh_transport_set_preferred(t, SSH_ALG_CIPHER, ciphers) == SSH_OK);
    char *names = NULL;
    CHECK(ssh_transport_get_preferred(t, SSH_ALG_CIPHER, &names) == SSH_OK);
    CHECK(names != NULL && strcmp(names, ciphers) == 0);
    sekura_string_free(names);
    CHECK(ssh_transport_get_supported(SSH_ALG_CIPHER, &names) == SSH_OK);
    CHECK(names != NULL && strstr(names, "aes128-ctr") != NULL);
    sekura_string_free(names);
    CHECK(ssh_transport_set_rekey_limits(t, 0, 0) == SSH_OK);
    CHECK(ssh_transport_set_keepalive(t, 30, 3) == SSH_OK);
    CHECK(!ssh_transport_is_active(t));
    CHECK(ssh_transport_start_client(t) == SSH_OK);
    CHECK(ssh_transport_is_active(t));
    CHECK(!ssh_transport_is_authenticated(t));

    CHECK_FAILS(ssh_transport_get_remote_server_key(t, NULL), SSH_ERR_INVALID_ARG);
    ssh_pkey *host_key = NULL;
    CHECK(ssh_transport_get_remote_server_key(t, &host_key) == SSH_OK);
    test_known_hosts(c, host_key);
    test_hostkeys(c, host_key);
    ssh_pkey_free(host_key);

    test_authentication(t, c);
    test_session_facts(t, c);
    test_echo(t);
    test_port_forward(t);
    test_streams(t);
    test_poll(t);
    test_signal(t);
    test_timeouts(t);
    test_close(t);

    CHECK(atomic_load(&log_messages) > 0 && atomic_load(&named_log_messages) > 0);
    sekura_set_log_callback(0, NULL, NULL);
}

/* ssh_transport_new: a socket the program connected itself. */
static void test_own_socket(const struct config *c)
{
    struct addrinfo hints, *found = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)c->port);
    CHECK(getaddrinfo(c->host, port, &hints, &found) == 0);
    if (found == NULL)
        return;
    int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
    CHECK(fd >= 0 && connect(fd, found->ai_addr, found->ai_addrlen) == 0);
    freeaddrinfo(found);

    /* This connection is compressed, if the server agrees (OpenSSH does by default). */
    int logged_before = atomic_load(&log_messages);
    ssh_transport *t = ssh_transport_new(fd);
    CHECK(t != NULL);
    CHECK(ssh_transport_use_compression(t, true) == SSH_OK);
    CHECK(ssh_transport_start_client(t) == SSH_OK);
    ssh_pkey *key = ssh_pkey_from_file(c->key, NULL);
    CHECK(ssh_transport_auth_publickey(t, c->user, key) == SSH_OK);
    ssh_pkey_free(key);
    test_echo(t);
    test_streams(t);
    CHECK(ssh_transport_disconnect(t, 11, "api_test is done") == SSH_OK);
    CHECK(!ssh_transport_is_active(t));
    ssh_transport_free(t);
    CHECK(atomic_load(&log_messages) == logged_before); /* logging was turned off */
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: %s HOST PORT USER KEY UNAUTHORIZED_KEY ENCRYPTED_KEY "
                        "PASSPHRASE KNOWN_HOSTS\n", argv[0]);
        return 100;
    }
    struct config c = {argv[1], (uint16_t)atoi(argv[2]), argv[3], argv[4],
                       argv[5], argv[6], argv[7], argv[8]};
    setvbuf(stdout, NULL, _IOLBF, 0);

    test_library();
    test_null_transport();
    test_null_known_hosts(&c);
    test_null_channel();
    test_null_hostkeys();
    test_null_agent();
    test_agent();
    test_connection(&c);
    test_own_socket(&c);

    return check_summary();
}
