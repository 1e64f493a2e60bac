/*
 * keys_test: every ssh_pkey_* function of sekura.h, through the shared library, on key files
 * made by ssh-keygen: loading, generating, writing and reading back, signing and verifying,
 * certificates. tests/c_programs.rs builds and runs it.
 *
 *   keys_test KEY ENCRYPTED_KEY PASSPHRASE CERT CA_PUB
 *
 * KEY is an unencrypted Ed25519 private key, ENCRYPTED_KEY one encrypted with PASSPHRASE,
 * CERT a user certificate of KEY's public key signed by the CA whose public key is CA_PUB,
 * with key id "api-test", principals "alice" and "bob", serial 42 and a finite validity.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <unistd.h>

#include "check.h"

struct config {
    const char *key;
    const char *encrypted_key;
    const char *passphrase;
    const char *cert;
    const char *ca_pub;
};

static void test_null(void)
{
    static const uint8_t data[] = "data";
    uint8_t *bytes = (uint8_t *)&failures; /* sentinels: outputs must stay untouched */
    size_t len = 12345;
    char *text = (char *)&failures, *value = (char *)&failures;
    ssh_pkey *key = (ssh_pkey *)&failures;
    uint64_t after = 7, before = 7;

    CHECK_NULL(ssh_pkey_from_file(NULL, NULL), SSH_ERR_INVALID_ARG);
    CHECK_NULL(ssh_pkey_from_memory(NULL, 10, NULL), SSH_ERR_INVALID_ARG);
    CHECK_NULL(ssh_pkey_from_public_string(NULL), SSH_ERR_INVALID_ARG);
    CHECK_NULL(ssh_pkey_from_public_file(NULL), SSH_ERR_INVALID_ARG);
    CHECK_NULL(ssh_pkey_cert_from_file(NULL), SSH_ERR_INVALID_ARG);
    CHECK_NULL(ssh_pkey_from_blob(NULL, 10), SSH_ERR_INVALID_ARG);
    CHECK_NULL(ssh_pkey_generate(NULL, 0), SSH_ERR_INVALID_ARG);
    CHECK_NULL(ssh_pkey_with_certificate(NULL, NULL), SSH_ERR_INVALID_ARG);
    ssh_pkey_free(NULL);

    CHECK_NULL(ssh_pkey_get_type(NULL), SSH_ERR_INVALID_ARG);
    CHECK_NULL(ssh_pkey_get_fingerprint(NULL), SSH_ERR_INVALID_ARG);
    CHECK_NULL(ssh_pkey_get_fingerprint_md5(NULL), SSH_ERR_INVALID_ARG);
    CHECK_NULL(ssh_pkey_get_base64(NULL), SSH_ERR_INVALID_ARG);
    CHECK_NULL(ssh_pkey_get_public_string(NULL), SSH_ERR_INVALID_ARG);
    CHECK_NULL(ssh_pkey_get_comment(NULL), SSH_ERR_INVALID_ARG);
    CHECK_NULL(ssh_pkey_get_signature_algorithms(NULL, true), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_pkey_get_blob(NULL, &bytes, &len), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_pkey_get_bits(NULL), SSH_ERR_INVALID_ARG);
    CHECK(!ssh_pkey_equal(NULL, NULL));
    CHECK(!ssh_pkey_has_private(NULL));
    CHECK(!ssh_pkey_is_certificate(NULL));

    CHECK_FAILS(ssh_pkey_sign(NULL, "ssh-ed25519", data, sizeof data, &bytes, &len),
                SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_pkey_verify(NULL, "ssh-ed25519", data, sizeof data, data, sizeof data),
                SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_pkey_write_private(NULL, "/nonexistent/key", NULL, SSH_PKEY_FORMAT_OPENSSH),
                SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_pkey_export_private(NULL, NULL, SSH_PKEY_FORMAT_OPENSSH, &text),
                SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_pkey_write_public(NULL, "/nonexistent/key.pub"), SSH_ERR_INVALID_ARG);

    CHECK_FAILS(ssh_pkey_cert_get_type(NULL), SSH_ERR_INVALID_ARG);
    CHECK_NULL(ssh_pkey_cert_get_key_id(NULL), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_pkey_cert_get_serial(NULL, &after), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_pkey_cert_get_validity(NULL, &after, &before), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_pkey_cert_get_principal_count(NULL, &len), SSH_ERR_INVALID_ARG);
    CHECK_NULL(ssh_pkey_cert_get_principal(NULL, 0), SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_pkey_cert_get_option_count(NULL, SSH_PKEY_CERT_EXTENSIONS, &len),
                SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_pkey_cert_get_option(NULL, SSH_PKEY_CERT_EXTENSIONS, 0, &text, &value),
                SSH_ERR_INVALID_ARG);
    CHECK_FAILS(ssh_pkey_cert_get_ca_key(NULL, &key), SSH_ERR_INVALID_ARG);

    CHECK(bytes == (uint8_t *)&failures && len == 12345 && after == 7 && before == 7);
    CHECK(text == (char *)&failures && value == (char *)&failures);
    CHECK(key == (ssh_pkey *)&failures);
}

/* Private key files as ssh-keygen writes them, and the errors for the others. */
static void test_files(const struct config *c)
{
    ssh_pkey *key = ssh_pkey_from_file(c->key, NULL);
    CHECK(key != NULL && ssh_pkey_has_private(key) && !ssh_pkey_is_certificate(key));
    char *type = ssh_pkey_get_type(key);
    char *fingerprint = ssh_pkey_get_fingerprint(key);
    char *md5 = ssh_pkey_get_fingerprint_md5(key);
    char *base64 = ssh_pkey_get_base64(key);
    char *comment = ssh_pkey_get_comment(key);
    CHECK(type != NULL && strcmp(type, "ssh-ed25519") == 0);
    CHECK(starts_with(fingerprint, "SHA256:"));
    CHECK(starts_with(md5, "MD5:"));
    CHECK(base64 != NULL && strlen(base64) > 40);
    CHECK(comment != NULL);
    CHECK(ssh_pkey_get_bits(key) == 256);
    sekura_string_free(type);
    sekura_string_free(fingerprint);
    sekura_string_free(md5);
    sekura_string_free(base64);
    sekura_string_free(comment);
    /* A reference is the same key, and outlives the handle it came from. */
    ssh_pkey *same = ssh_pkey_ref(key);
    CHECK(same != NULL && ssh_pkey_equal(same, key) && ssh_pkey_has_private(same));
    ssh_pkey_free(key);
    CHECK(ssh_pkey_get_bits(same) == 256);
    ssh_pkey_free(same);
    CHECK_NULL(ssh_pkey_ref(NULL), SSH_ERR_INVALID_ARG);

    CHECK_NULL(ssh_pkey_from_file("/nonexistent/sekura/key", NULL), SSH_ERR_IO);
    CHECK_NULL(ssh_pkey_from_file(c->cert, NULL), SSH_ERR_KEY_FORMAT);
    CHECK_NULL(ssh_pkey_from_file(c->encrypted_key, NULL), SSH_ERR_PASSWORD_REQUIRED);
    CHECK_NULL(ssh_pkey_from_file(c->encrypted_key, "not the passphrase"),
               SSH_ERR_BAD_PASSPHRASE);
    key = ssh_pkey_from_file(c->encrypted_key, c->passphrase);
    CHECK(key != NULL);
    ssh_pkey_free(key);
}

/* Signs with `key` and verifies: the signature, and not over other data. */
static void test_sign_verify(const ssh_pkey *key, const char *algorithm)
{
    static const uint8_t data[] = "data to sign";
    static const uint8_t other[] = "other data";
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    CHECK(ssh_pkey_sign(key, algorithm, data, sizeof data, &sig, &sig_len) == SSH_OK);
    CHECK(sig != NULL && sig_len > 64);
    CHECK(ssh_pkey_verify(key, algorithm, data, sizeof data, sig, sig_len) == SSH_OK);
    CHECK_FAILS(ssh_pkey_verify(key, algorithm, other, sizeof other, sig, sig_len),
                SSH_ERR_HOSTKEY_REJECTED);
    sekura_bytes_free(sig, sig_len);
}

/* A generated key, and every way of writing it out and reading it back. */
static void test_round_trips(const char *dir)
{
    ssh_pkey *key = ssh_pkey_generate("ed25519", 0);
    CHECK(key != NULL && ssh_pkey_has_private(key));
    CHECK_NULL(ssh_pkey_generate("no-such-type", 0), SSH_ERR_INVALID_ARG);
    char *algorithms = ssh_pkey_get_signature_algorithms(key, true);
    CHECK(algorithms != NULL && strcmp(algorithms, "ssh-ed25519") == 0);
    sekura_string_free(algorithms);
    test_sign_verify(key, "ssh-ed25519");
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    CHECK_FAILS(ssh_pkey_sign(key, "rsa-sha2-256", (const uint8_t *)"x", 1, &sig, &sig_len),
                SSH_ERR_INVALID_ARG);

    char *text = NULL;
    CHECK(ssh_pkey_export_private(key, NULL, SSH_PKEY_FORMAT_OPENSSH, &text) == SSH_OK);
    ssh_pkey *copy = ssh_pkey_from_memory((const uint8_t *)text, text ? strlen(text) : 0, NULL);
    CHECK(ssh_pkey_equal(key, copy) && ssh_pkey_has_private(copy));
    ssh_pkey_free(copy);
    sekura_string_free(text);

    char path[128], pub_path[128];
    snprintf(path, sizeof path, "%s/key", dir);
    snprintf(pub_path, sizeof pub_path, "%s/key.pub", dir);
    CHECK_FAILS(ssh_pkey_write_private(key, path, NULL, SSH_PKEY_FORMAT_PEM),
                SSH_ERR_INVALID_ARG);
    CHECK(ssh_pkey_write_private(key, path, "secret", SSH_PKEY_FORMAT_OPENSSH) == SSH_OK);
    copy = ssh_pkey_from_file(path, "secret");
    CHECK(ssh_pkey_equal(key, copy));
    ssh_pkey_free(copy);

    CHECK(ssh_pkey_write_public(key, pub_path) == SSH_OK);
    copy = ssh_pkey_from_public_file(pub_path);
    CHECK(ssh_pkey_equal(key, copy) && !ssh_pkey_has_private(copy));
    CHECK_FAILS(ssh_pkey_sign(copy, "ssh-ed25519", (const uint8_t *)"x", 1, &sig, &sig_len),
                SSH_ERR_INVALID_ARG);
    ssh_pkey_free(copy);

    char *line = ssh_pkey_get_public_string(key);
    CHECK(starts_with(line, "ssh-ed25519 "));
    copy = ssh_pkey_from_public_string(line);
    CHECK(ssh_pkey_equal(key, copy));
    ssh_pkey_free(copy);
    sekura_string_free(line);
    CHECK_NULL(ssh_pkey_from_public_string("not a key"), SSH_ERR_KEY_FORMAT);

    uint8_t *blob = NULL;
    size_t blob_len = 0;
    CHECK(ssh_pkey_get_blob(key, &blob, &blob_len) == SSH_OK);
    copy = ssh_pkey_from_blob(blob, blob_len);
    CHECK(ssh_pkey_equal(key, copy));
    ssh_pkey_free(copy);
    sekura_bytes_free(blob, blob_len);
    CHECK_NULL(ssh_pkey_from_blob((const uint8_t *)"junk", 4), SSH_ERR_KEY_FORMAT);

    ssh_pkey *other = ssh_pkey_generate("ecdsa", 384);
    CHECK(other != NULL && ssh_pkey_get_bits(other) == 384 && !ssh_pkey_equal(key, other));
    test_sign_verify(other, "ecdsa-sha2-nistp384");
    ssh_pkey_free(other);
    ssh_pkey_free(key);
    unlink(path);
    unlink(pub_path);
}

/* The user certificate: what it says, its CA, and combining it with its private key. */
static void test_certificate(const struct config *c)
{
    ssh_pkey *cert = ssh_pkey_cert_from_file(c->cert);
    CHECK(cert != NULL && ssh_pkey_is_certificate(cert) && !ssh_pkey_has_private(cert));
    CHECK(ssh_pkey_cert_get_type(cert) == SSH_PKEY_CERT_USER);
    char *id = ssh_pkey_cert_get_key_id(cert);
    CHECK(id != NULL && strcmp(id, "api-test") == 0);
    sekura_string_free(id);
    uint64_t serial = 0, after = 0, before = 0;
    CHECK(ssh_pkey_cert_get_serial(cert, &serial) == SSH_OK && serial == 42);
    CHECK(ssh_pkey_cert_get_validity(cert, &after, &before) == SSH_OK && after < before);

    size_t count = 0;
    CHECK(ssh_pkey_cert_get_principal_count(cert, &count) == SSH_OK && count == 2);
    char *principal = ssh_pkey_cert_get_principal(cert, 0);
    CHECK(principal != NULL && strcmp(principal, "alice") == 0);
    sekura_string_free(principal);
    CHECK(ssh_pkey_cert_get_principal(cert, 2) == NULL);

    CHECK(ssh_pkey_cert_get_option_count(cert, SSH_PKEY_CERT_CRITICAL_OPTIONS, &count) ==
              SSH_OK &&
          count == 0);
    CHECK(ssh_pkey_cert_get_option_count(cert, SSH_PKEY_CERT_EXTENSIONS, &count) == SSH_OK &&
          count >= 1);
    char *name = NULL, *value = NULL;
    CHECK(ssh_pkey_cert_get_option(cert, SSH_PKEY_CERT_EXTENSIONS, 0, &name, &value) ==
          SSH_OK);
    CHECK(starts_with(name, "permit-") && value != NULL);
    sekura_string_free(name);
    sekura_string_free(value);

    ssh_pkey *ca = NULL;
    ssh_pkey *ca_file = ssh_pkey_from_public_file(c->ca_pub);
    CHECK(ssh_pkey_cert_get_ca_key(cert, &ca) == SSH_OK && ssh_pkey_equal(ca, ca_file));
    ssh_pkey_free(ca);
    ssh_pkey_free(ca_file);

    ssh_pkey *key = ssh_pkey_from_file(c->key, NULL);
    CHECK(ssh_pkey_equal(key, cert));
    CHECK_FAILS(ssh_pkey_cert_get_type(key), SSH_ERR_INVALID_ARG);
    ssh_pkey *with_cert = ssh_pkey_with_certificate(key, cert);
    CHECK(with_cert != NULL && ssh_pkey_is_certificate(with_cert) &&
          ssh_pkey_has_private(with_cert));
    ssh_pkey_free(with_cert);
    ssh_pkey *stranger = ssh_pkey_generate("ed25519", 0);
    CHECK_NULL(ssh_pkey_with_certificate(stranger, cert), SSH_ERR_INVALID_ARG);
    ssh_pkey_free(stranger);
    ssh_pkey_free(key);
    ssh_pkey_free(cert);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s KEY ENCRYPTED_KEY PASSPHRASE CERT CA_PUB\n", argv[0]);
        return 100;
    }
    struct config c = {argv[1], argv[2], argv[3], argv[4], argv[5]};
    setvbuf(stdout, NULL, _IOLBF, 0);
    char dir[] = "/tmp/sekura-keys-test-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 100;
    }

    test_null();
    test_files(&c);
    test_round_trips(dir);
    test_certificate(&c);

    rmdir(dir);
    return check_summary();
}
