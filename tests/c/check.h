/*
 * The checks of the C test programs in tests/c (one translation unit each): every check
 * prints "ok - ..." or "not ok - ...", and the program's exit status is the number of
 * failed checks (capped at 100), 0 if all passed. tests/c_programs.rs runs the programs and
 * shows the failed lines. Checks may run on several threads at once (server_test's callbacks).
 */
#ifndef SEKURA_TEST_CHECK_H
#define SEKURA_TEST_CHECK_H

#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <sekura.h>

static atomic_int failures;

static void check_at(int ok, const char *what, int line)
{
    if (ok) {
        printf("ok - %s\n", what);
        return;
    }
    failures++;
    printf("not ok - %s (line %d; last result %d, last error \"%s\")\n", what, line,
           sekura_last_result(), sekura_last_error());
}

/* cond holds. */
#define CHECK(cond) check_at((cond) ? 1 : 0, #cond, __LINE__)

static void check_fails(long got, int code, const char *what, int line)
{
    if (got != code) {
        failures++;
        printf("not ok - %s (line %d; returned %ld)\n", what, line, got);
        return;
    }
    check_at(sekura_last_result() == code && sekura_last_error()[0] != '\0', what, line);
}

/* The call failed with code and left a message saying why. */
#define CHECK_FAILS(call, code) check_fails((long)(call), (code), #call " fails with " #code, __LINE__)

/* A constructor (or string getter) returned NULL and recorded code. */
#define CHECK_NULL(call, code)                                                                 \
    check_at((call) == NULL && sekura_last_result() == (code), #call " is NULL, " #code,        \
             __LINE__)

/* Entries of a directory, "." and ".." aside (for /proc/self/task and /proc/self/fd);
 * -1 if it cannot be read. */
static inline int directory_entries(const char *path)
{
    DIR *dir = opendir(path);
    if (!dir)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL)
        n += e->d_name[0] != '.';
    closedir(dir);
    return n;
}

static int starts_with(const char *s, const char *prefix)
{
    return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Prints the count of failed checks and returns the exit status. */
static int check_summary(void)
{
    int failed = atomic_load(&failures);
    printf("%d failed\n", failed);
    return failed > 100 ? 100 : failed;
}

#endif
