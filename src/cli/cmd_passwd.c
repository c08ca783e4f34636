/*
 * cmd_passwd.c - `edgeplane passwd`: manage a password file.
 *
 *   edgeplane passwd FILE USER                 prompt twice (no echo), set
 *   edgeplane passwd --password-stdin FILE USER   first line of stdin
 *   edgeplane passwd --scram FILE USER         SCRAM-SHA-256 entry
 *   edgeplane passwd --iterations N FILE USER
 *   edgeplane passwd --delete FILE USER
 *
 * The file is rewritten atomically with mode 0600 (ep_passwd_file_update);
 * a running broker picks the change up on its next reload check.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "cli/cmd_passwd.h"
#include "svc/auth/passwd.h"

static void passwd_usage(FILE *f)
{
    fprintf(f,
            "usage: edgeplane passwd [options] FILE USER\n\n"
            "Adds USER to the password file FILE or changes its password; creates FILE\n"
            "(mode 0600) if needed. The password is asked twice without echo.\n\n"
            "options:\n"
            "  --password-stdin  read the password from the first line of standard input\n"
            "  --delete          remove USER from FILE\n"
            "  --scram           store a SCRAM-SHA-256 entry (for MQTT 5 enhanced\n"
            "                    authentication; also accepted for username/password)\n"
            "  --iterations N    hash iterations (default %u, or %u with --scram;\n"
            "                    at least %u, or %u with --scram)\n\n"
            "Exit codes: 0 ok, 1 failure (file, user not found), 2 usage.\n",
            EP_PASSWD_DEFAULT_ITERATIONS, EP_PASSWD_SCRAM_DEFAULT_ITERATIONS,
            EP_PASSWD_MIN_ITERATIONS, EP_PASSWD_SCRAM_DEFAULT_ITERATIONS);
}

/* Reads one line (without the newline) into buf. Returns its length, or
 * -1 on end of input / a line longer than the maximum password. */
static long read_line(FILE *in, char *buf, size_t cap)
{
    if (fgets(buf, (int)cap, in) == NULL)
        return -1;
    size_t n = strlen(buf);
    bool nl = n > 0 && buf[n - 1] == '\n';
    if (!nl && !feof(in))
        return -1; /* too long */
    if (nl)
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    return (long)n;
}

/* Prompts on the terminal with echo off. */
static long prompt(FILE *tty, const char *msg, char *buf, size_t cap)
{
    struct termios old, quiet;
    int fd = fileno(tty);
    fputs(msg, stderr);
    fflush(stderr);
    bool restore = tcgetattr(fd, &old) == 0;
    if (restore) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    long n = read_line(tty, buf, cap);
    if (restore)
        tcsetattr(fd, TCSAFLUSH, &old);
    fputs("\n", stderr);
    return n;
}

int ep_cmd_passwd(int argc, char **argv)
{
    const char *file = NULL, *user = NULL;
    bool from_stdin = false, del = false, scram = false;
    unsigned long iterations = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            passwd_usage(stdout);
            return EP_EXIT_OK;
        } else if (strcmp(a, "--password-stdin") == 0) {
            from_stdin = true;
        } else if (strcmp(a, "--delete") == 0 || strcmp(a, "-D") == 0) {
            del = true;
        } else if (strcmp(a, "--scram") == 0) {
            scram = true;
        } else if (strcmp(a, "--iterations") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            iterations = strtoul(argv[++i], &end, 10);
            if (errno != 0 || *end != '\0' || argv[i][0] == '-' || iterations == 0 ||
                iterations > EP_PASSWD_MAX_ITERATIONS) {
                fprintf(stderr, "edgeplane passwd: --iterations: expected 1..%u\n",
                        EP_PASSWD_MAX_ITERATIONS);
                return EP_EXIT_USAGE;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "edgeplane passwd: unknown option '%s'\n", a);
            passwd_usage(stderr);
            return EP_EXIT_USAGE;
        } else if (file == NULL) {
            file = a;
        } else if (user == NULL) {
            user = a;
        } else {
            fprintf(stderr, "edgeplane passwd: unexpected argument '%s'\n", a);
            return EP_EXIT_USAGE;
        }
    }
    if (file == NULL || user == NULL) {
        passwd_usage(stderr);
        return EP_EXIT_USAGE;
    }
    if (!ep_passwd_user_valid(user, strlen(user))) {
        fprintf(stderr,
                "edgeplane passwd: invalid user name (1..%u bytes, no ':' or control "
                "characters)\n",
                EP_PASSWD_MAX_USER);
        return EP_EXIT_USAGE;
    }
    unsigned min = scram ? EP_PASSWD_SCRAM_DEFAULT_ITERATIONS : EP_PASSWD_MIN_ITERATIONS;
    if (iterations != 0 && iterations < min) {
        fprintf(stderr, "edgeplane passwd: --iterations: at least %u%s\n", min,
                scram ? " for SCRAM (RFC 7677)" : "");
        return EP_EXIT_USAGE;
    }
    if (del && (from_stdin || scram || iterations)) {
        fprintf(stderr, "edgeplane passwd: --delete takes no password options\n");
        return EP_EXIT_USAGE;
    }

    ep_cfg_errs errs = {0};
    ep_err err;
    int rc = EP_EXIT_OK;
    if (del) {
        err = ep_passwd_file_update(file, user, NULL, &errs);
        ep_cfg_errs_print(&errs, stderr);
        ep_cfg_errs_fini(&errs);
        if (err == EP_ENOTFOUND) {
            fprintf(stderr, "edgeplane passwd: %s: no user '%s'\n", file, user);
            return EP_EXIT_FAILURE;
        }
        if (err != EP_EOK) {
            fprintf(stderr, "edgeplane passwd: %s: %s\n", file, ep_strerror(err));
            return EP_EXIT_FAILURE;
        }
        return EP_EXIT_OK;
    }

    static char pw1[EP_PASSWD_MAX_PASSWORD + 3], pw2[EP_PASSWD_MAX_PASSWORD + 3];
    long n1, n2;
    if (from_stdin) {
        n1 = read_line(stdin, pw1, sizeof(pw1));
        if (n1 < 0) {
            fprintf(stderr,
                    "edgeplane passwd: no password on standard input (or longer than "
                    "%u bytes)\n",
                    EP_PASSWD_MAX_PASSWORD);
            rc = EP_EXIT_USAGE;
            goto out;
        }
    } else {
        FILE *tty = fopen("/dev/tty", "r+");
        if (tty == NULL) {
            fprintf(stderr, "edgeplane passwd: no terminal to ask for the password; use "
                            "--password-stdin\n");
            rc = EP_EXIT_USAGE;
            goto out;
        }
        n1 = prompt(tty, "Password: ", pw1, sizeof(pw1));
        n2 = n1 < 0 ? -1 : prompt(tty, "Password (again): ", pw2, sizeof(pw2));
        fclose(tty);
        if (n1 < 0 || n2 < 0) {
            fprintf(stderr, "edgeplane passwd: no password read\n");
            rc = EP_EXIT_FAILURE;
            goto out;
        }
        if (n1 != n2 || memcmp(pw1, pw2, (size_t)n1) != 0) {
            fprintf(stderr, "edgeplane passwd: passwords do not match\n");
            rc = EP_EXIT_FAILURE;
            goto out;
        }
    }
    if (n1 == 0) {
        fprintf(stderr, "edgeplane passwd: empty password refused\n");
        rc = EP_EXIT_USAGE;
        goto out;
    }
    if ((unsigned long)n1 > EP_PASSWD_MAX_PASSWORD) {
        fprintf(stderr, "edgeplane passwd: password longer than %u bytes\n",
                EP_PASSWD_MAX_PASSWORD);
        rc = EP_EXIT_USAGE;
        goto out;
    }
    ep_passwd_entry e;
    err = ep_passwd_entry_make(user, pw1, (size_t)n1,
                               scram ? EP_PASSWD_SCRAM_SHA256 : EP_PASSWD_PBKDF2_SHA512,
                               (uint32_t)iterations, &e);
    if (err == EP_EOK)
        err = ep_passwd_file_update(file, user, &e, &errs);
    OPENSSL_cleanse(&e, sizeof(e));
    ep_cfg_errs_print(&errs, stderr);
    ep_cfg_errs_fini(&errs);
    if (err != EP_EOK) {
        fprintf(stderr, "edgeplane passwd: %s: %s\n", file, ep_strerror(err));
        rc = EP_EXIT_FAILURE;
    }
out:
    OPENSSL_cleanse(pw1, sizeof(pw1));
    OPENSSL_cleanse(pw2, sizeof(pw2));
    return rc;
}
