/* A client written against libssh (Debian's libssh-dev), with libssh's default algorithm
 * settings: it checks the server's key against a known_hosts file, logs in with a private
 * key file, runs one command and relays its stdout, stderr and exit status.
 *
 *   libssh_client PORT USER KNOWN_HOSTS KEY_FILE COMMAND
 */
#include <stdio.h>
#include <stdlib.h>
#include <libssh/libssh.h>

static int fail(ssh_session s, const char *what)
{
    fprintf(stderr, "libssh_client: %s: %s\n", what, ssh_get_error(s));
    return 255;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: libssh_client PORT USER KNOWN_HOSTS KEY_FILE COMMAND\n");
        return 2;
    }
    unsigned int port = (unsigned int)strtoul(argv[1], NULL, 10);
    ssh_session s = ssh_new();
    if (s == NULL)
        return 255;
    ssh_options_set(s, SSH_OPTIONS_HOST, "127.0.0.1");
    ssh_options_set(s, SSH_OPTIONS_PORT, &port);
    ssh_options_set(s, SSH_OPTIONS_USER, argv[2]);
    ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, argv[3]);
    ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
    if (ssh_connect(s) != SSH_OK)
        return fail(s, "connect");
    if (ssh_session_is_known_server(s) != SSH_KNOWN_HOSTS_OK)
        return fail(s, "host key not in known_hosts");

    ssh_key key = NULL;
    if (ssh_pki_import_privkey_file(argv[4], NULL, NULL, NULL, &key) != SSH_OK)
        return fail(s, "import key");
    if (ssh_userauth_publickey(s, NULL, key) != SSH_AUTH_SUCCESS)
        return fail(s, "publickey authentication");
    ssh_key_free(key);

    ssh_channel ch = ssh_channel_new(s);
    if (ch == NULL || ssh_channel_open_session(ch) != SSH_OK)
        return fail(s, "open session");
    if (ssh_channel_request_exec(ch, argv[5]) != SSH_OK)
        return fail(s, "exec");
    char buf[4096];
    for (int is_stderr = 0; is_stderr <= 1; is_stderr++) {
        int n;
        while ((n = ssh_channel_read(ch, buf, sizeof buf, is_stderr)) > 0)
            fwrite(buf, 1, (size_t)n, is_stderr ? stderr : stdout);
        if (n < 0)
            return fail(s, "read");
    }
    int status = ssh_channel_get_exit_status(ch);
    ssh_channel_send_eof(ch);
    ssh_channel_close(ch);
    ssh_channel_free(ch);
    ssh_disconnect(s);
    ssh_free(s);
    return status;
}
