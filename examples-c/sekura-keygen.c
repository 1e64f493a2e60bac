/*
 * sekura-keygen: makes a key pair with Sekura, as `ssh-keygen -t TYPE -f FILE -N ''` does.
 *
 *   sekura-keygen [-t ed25519|ecdsa|rsa|dsa] [-b BITS] [-N PASSPHRASE] -f FILE
 *
 * Writes the private key to FILE (OpenSSH format, mode 0600, encrypted when a passphrase is
 * given) and the public key to FILE.pub, then prints the key's SHA256 fingerprint.
 *
 * Build: cc -std=c11 sekura-keygen.c $(pkg-config --cflags --libs sekura)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sekura.h>

static void usage(void)
{
    fprintf(stderr,
            "usage: sekura-keygen [-t ed25519|ecdsa|rsa|dsa] [-b BITS] [-N PASSPHRASE] -f FILE\n");
    exit(1);
}

int main(int argc, char **argv)
{
    const char *type = "ed25519", *file = NULL, *passphrase = NULL;
    int bits = 0, opt;
    while ((opt = getopt(argc, argv, "t:b:N:f:")) != -1) {
        switch (opt) {
        case 't':
            type = optarg;
            break;
        case 'b':
            bits = atoi(optarg);
            break;
        case 'N':
            passphrase = optarg[0] != '\0' ? optarg : NULL;
            break;
        case 'f':
            file = optarg;
            break;
        default:
            usage();
        }
    }
    if (file == NULL || optind != argc)
        usage();

    ssh_pkey *key = ssh_pkey_generate(type, bits);
    if (key == NULL) {
        fprintf(stderr, "sekura-keygen: %s\n", sekura_last_error());
        return 1;
    }
    size_t len = strlen(file) + sizeof ".pub";
    char *public_path = malloc(len);
    int rc = public_path == NULL ? SSH_ERR_INTERNAL : SSH_OK;
    if (rc == SSH_OK) {
        snprintf(public_path, len, "%s.pub", file);
        rc = ssh_pkey_write_private(key, file, passphrase, SSH_PKEY_FORMAT_OPENSSH);
    }
    if (rc == SSH_OK)
        rc = ssh_pkey_write_public(key, public_path);
    if (rc == SSH_OK) {
        char *fingerprint = ssh_pkey_get_fingerprint(key);
        printf("%s %s\n", fingerprint != NULL ? fingerprint : "?", public_path);
        sekura_string_free(fingerprint);
    } else {
        fprintf(stderr, "sekura-keygen: %s\n", sekura_last_error());
    }
    free(public_path);
    ssh_pkey_free(key);
    return rc == SSH_OK ? 0 : 1;
}
