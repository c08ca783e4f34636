/*
 * wal_crash.c - kill -9 test of the write-ahead log.
 *
 * Parent (default): repeatedly starts itself as a child, lets it append for
 * a random 0-250 ms, kills it with SIGKILL, then recovers the log in-process
 * and checks that every record the child reported as acknowledged is present
 * and intact, across all restarts so far.
 *
 * Child (`wal_crash child DIR`): opens the log in sync mode (recovering what
 * the last child left), then two threads, each with its own event loop and
 * completion port, keep 32 appends in flight. For every completion with
 * EP_EOK it prints "A <seq> <run> <thread> <counter>" as one write() (atomic
 * on a pipe). A record's payload is derived from (run, thread, counter), so
 * the parent can verify content as well as presence.
 *
 *   wal_crash [--iterations N] [--reset-every K] [--seed S] [--dir DIR]
 * EP_WAL_CRASH_ITERS and EP_WAL_CRASH_SEED override N and S. The directory
 * is wiped every K iterations (default 50) to bound the run time of long
 * runs. Exit status 0 when every check passed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/loop.h"
#include "core/wal.h"

extern char **environ;

enum { HDR = 16, MAXPAY = 1200, INFLIGHT = 32 };

static size_t pay_len(uint32_t run, uint32_t th, uint64_t ctr)
{
    return HDR + (size_t)((run * 7u + th * 13u + ctr * 31u) % (MAXPAY - HDR));
}

static void pay_fill(uint8_t *p, size_t n, uint32_t run, uint32_t th, uint64_t ctr)
{
    memcpy(p, &run, 4);
    memcpy(p + 4, &th, 4);
    memcpy(p + 8, &ctr, 8);
    for (size_t i = HDR; i < n; i++)
        p[i] = (uint8_t)(run + th * 3 + ctr * 5 + i);
}

/* ------------------------------------------------------------------ child */

typedef struct cthread {
    ep_wal *w;
    ep_wal_port *port;
    ep_loop *loop;
    uint32_t run, id;
    uint64_t next_ctr;
    pthread_t tid;
} cthread;

typedef struct ticket {
    cthread *t;
    uint64_t ctr;
} ticket;

static void child_append(cthread *t);

static void child_done(void *ud, uint64_t seq, ep_err st)
{
    ticket *k = ud;
    cthread *t = k->t;
    if (st == EP_EOK) {
        char line[96];
        int n = snprintf(line, sizeof(line), "A %" PRIu64 " %u %u %" PRIu64 "\n", seq, t->run,
                         t->id, k->ctr);
        if (write(1, line, (size_t)n) != n)
            _exit(3);
    }
    free(k);
    child_append(t);
}

static void child_append(cthread *t)
{
    static _Thread_local uint8_t buf[MAXPAY];
    ticket *k = malloc(sizeof(*k));
    if (k == NULL)
        _exit(4);
    k->t = t;
    k->ctr = t->next_ctr++;
    size_t n = pay_len(t->run, t->id, k->ctr);
    pay_fill(buf, n, t->run, t->id, k->ctr);
    ep_err e = ep_wal_append(t->w, t->port, 1, buf, n, child_done, k, NULL);
    if (e != EP_EOK)
        _exit(5);
}

static void *child_thread(void *arg)
{
    cthread *t = arg;
    if (ep_loop_new(&t->loop, NULL) || ep_wal_port_new(&t->port, t->w, t->loop))
        _exit(6);
    for (int i = 0; i < INFLIGHT; i++)
        child_append(t);
    ep_loop_run(t->loop);
    return NULL;
}

static int child_main(const char *dir)
{
    ep_wal_opts o;
    memset(&o, 0, sizeof(o));
    o.dir = dir;
    o.durability = EP_WAL_SYNC;
    o.segment_bytes = 256 * 1024; /* roll often: crashes land around rollovers too */
    ep_wal *w;
    ep_wal_report rep;
    ep_err e = ep_wal_open(&w, &o, NULL, NULL, &rep);
    if (e) {
        fprintf(stderr, "child: open: %s\n", ep_strerror(e));
        return 2;
    }
    cthread th[2];
    for (uint32_t i = 0; i < 2; i++) {
        memset(&th[i], 0, sizeof(th[i]));
        th[i].w = w;
        th[i].run = (uint32_t)getpid();
        th[i].id = i;
        pthread_create(&th[i].tid, NULL, child_thread, &th[i]);
    }
    for (;;)
        pause(); /* until SIGKILL */
}

/* ------------------------------------------------------------------ parent */

typedef struct ack {
    uint64_t seq, ctr;
    uint32_t run, th;
} ack;

typedef struct acks {
    ack *v;
    size_t n, cap;
} acks;

static int ack_cmp(const void *a, const void *b)
{
    const ack *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void acks_push(acks *a, ack k)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 4096;
        a->v = realloc(a->v, a->cap * sizeof(*a->v));
        if (a->v == NULL)
            abort();
    }
    a->v[a->n++] = k;
}

typedef struct verify {
    const acks *a;
    size_t next; /* index into a (sorted by seq) */
    uint64_t records, bad_content, mismatched;
} verify;

static ep_err on_replay(void *ud, const ep_wal_rec *r)
{
    verify *v = ud;
    static uint8_t chk[MAXPAY];
    v->records++;
    uint32_t run, th;
    uint64_t ctr;
    if (r->len < HDR || r->len > MAXPAY) {
        v->bad_content++;
        return EP_EOK;
    }
    memcpy(&run, r->data, 4);
    memcpy(&th, r->data + 4, 4);
    memcpy(&ctr, r->data + 8, 8);
    if (pay_len(run, th, ctr) != r->len) {
        v->bad_content++;
        return EP_EOK;
    }
    pay_fill(chk, r->len, run, th, ctr);
    if (memcmp(chk, r->data, r->len) != 0)
        v->bad_content++;
    /* Acknowledged records are matched in seq order. */
    while (v->next < v->a->n && v->a->v[v->next].seq < r->seq)
        v->next++; /* a missing acked record: counted below */
    if (v->next < v->a->n && v->a->v[v->next].seq == r->seq) {
        const ack *k = &v->a->v[v->next];
        if (k->run != run || k->th != th || k->ctr != ctr)
            v->mismatched++;
    }
    return EP_EOK;
}

/* Seqs found in the log, in order (to find acked seqs that are missing). */
typedef struct present {
    uint64_t *seq;
    size_t n, cap;
} present;

static void rm_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir);
}

static uint64_t rng_state;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

typedef struct pv {
    present p;
    verify v;
} pv;

static ep_err on_rec(void *ud, const ep_wal_rec *r)
{
    pv *x = ud;
    if (x->p.n == x->p.cap) {
        x->p.cap = x->p.cap ? x->p.cap * 2 : 4096;
        x->p.seq = realloc(x->p.seq, x->p.cap * sizeof(*x->p.seq));
        if (x->p.seq == NULL)
            abort();
    }
    x->p.seq[x->p.n++] = r->seq;
    return on_replay(&x->v, r);
}

static int parent_main(int iters, int reset_every, uint64_t seed, const char *dir_arg)
{
    char dir[512];
    char self[512];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (sl <= 0) {
        perror("readlink");
        return 2;
    }
    self[sl] = '\0';
    if (dir_arg) {
        snprintf(dir, sizeof(dir), "%s", dir_arg);
        mkdir(dir, 0755);
    } else {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof(dir), "%s/ep_wal_crash.XXXXXX", t ? t : "/tmp");
        if (mkdtemp(dir) == NULL) {
            perror("mkdtemp");
            return 2;
        }
    }
    char logdir[600];
    snprintf(logdir, sizeof(logdir), "%s/wal", dir);
    rng_state = seed ? seed : 0x9E3779B97F4A7C15ull;
    printf("wal_crash: %d iterations, seed %" PRIu64 ", dir %s\n", iters, seed, logdir);

    acks a = {0};
    uint64_t total_acked = 0, total_torn = 0, failures = 0;
    for (int it = 0; it < iters; it++) {
        if (reset_every > 0 && it > 0 && it % reset_every == 0) {
            rm_dir(logdir);
            a.n = 0;
        }
        int pfd[2];
        if (pipe(pfd) != 0) {
            perror("pipe");
            return 2;
        }
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
        posix_spawn_file_actions_addclose(&fa, pfd[0]);
        char *argv[] = {self, "child", logdir, NULL};
        pid_t pid;
        if (posix_spawn(&pid, self, &fa, NULL, argv, environ) != 0) {
            perror("posix_spawn");
            return 2;
        }
        posix_spawn_file_actions_destroy(&fa);
        close(pfd[1]);

        uint64_t delay = rng() % 251;
        uint64_t t0 = ep_clock_mono_ms();
        bool killed = false;
        char buf[65536];
        size_t have = 0;
        size_t before = a.n;
        for (;;) {
            uint64_t now = ep_clock_mono_ms();
            if (!killed && now - t0 >= delay) {
                kill(pid, SIGKILL);
                killed = true;
            }
            struct pollfd p = {.fd = pfd[0], .events = POLLIN};
            int timeout = killed ? 1000 : (int)(delay - (now - t0));
            int pr = poll(&p, 1, timeout < 0 ? 0 : timeout);
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr == 0)
                continue;
            ssize_t r = read(pfd[0], buf + have, sizeof(buf) - have);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break; /* EOF: the child is gone */
            have += (size_t)r;
            size_t start = 0;
            for (size_t i = 0; i < have; i++) {
                if (buf[i] != '\n')
                    continue;
                buf[i] = '\0';
                ack k;
                if (sscanf(buf + start, "A %" SCNu64 " %u %u %" SCNu64, &k.seq, &k.run, &k.th,
                           &k.ctr) == 4)
                    acks_push(&a, k);
                start = i + 1;
            }
            memmove(buf, buf + start, have - start);
            have -= start;
        }
        close(pfd[0]);
        int status;
        waitpid(pid, &status, 0);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
            fprintf(stderr, "iteration %d: child exited with status %d before the kill\n", it,
                    status);
            failures++;
            break;
        }
        total_acked += a.n - before;
        qsort(a.v, a.n, sizeof(*a.v), ack_cmp);

        /* Recover and verify. */
        ep_wal_opts o;
        memset(&o, 0, sizeof(o));
        o.dir = logdir;
        ep_wal *w;
        ep_wal_report rep;
        pv x = {.v = {.a = &a}};
        ep_err e = ep_wal_open(&w, &o, on_rec, &x, &rep);
        if (e) {
            fprintf(stderr, "iteration %d: recovery failed: %s\n", it, ep_strerror(e));
            failures++;
            break;
        }
        ep_wal_close(w);
        size_t missing = 0, j = 0;
        for (size_t i = 0; i < a.n; i++) {
            while (j < x.p.n && x.p.seq[j] < a.v[i].seq)
                j++;
            if (j == x.p.n || x.p.seq[j] != a.v[i].seq) {
                if (missing++ < 5)
                    fprintf(stderr, "iteration %d: acknowledged seq %" PRIu64 " missing\n", it,
                            a.v[i].seq);
            }
        }
        total_torn += rep.torn_bytes;
        bool ok = missing == 0 && x.v.bad_content == 0 && x.v.mismatched == 0 && rep.nlosses == 0;
        printf("iter %3d: killed after %3" PRIu64 " ms, %6zu acked (%zu in log so far), "
               "%7" PRIu64 " records recovered in %" PRIu64 " ms, torn %" PRIu64
               " bytes, missing %zu, bad %" PRIu64 "/%" PRIu64 ", losses %u: %s\n",
               it, delay, a.n - before, a.n, x.v.records, rep.elapsed_us / 1000, rep.torn_bytes,
               missing, x.v.bad_content, x.v.mismatched, rep.nlosses, ok ? "ok" : "FAIL");
        fflush(stdout);
        free(x.p.seq);
        if (!ok) {
            failures++;
            break;
        }
    }
    free(a.v);
    printf("wal_crash: %s: %" PRIu64 " acknowledged records checked over the run, %" PRIu64
           " torn bytes dropped in total\n",
           failures ? "FAILED" : "passed", total_acked, total_torn);
    if (failures)
        printf("wal_crash: log kept in %s\n", logdir);
    else if (!dir_arg)
        rm_dir(dir);
    return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "child") == 0)
        return child_main(argv[2]);
    int iters = 25, reset_every = 50;
    uint64_t seed = 0;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc)
            iters = atoi(argv[++i]);
        else if (strcmp(argv[i], "--reset-every") == 0 && i + 1 < argc)
            reset_every = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--iterations N] [--reset-every K] [--seed S] [--dir D]\n",
                    argv[0]);
            return 2;
        }
    }
    const char *env = getenv("EP_WAL_CRASH_ITERS");
    if (env && *env)
        iters = atoi(env);
    env = getenv("EP_WAL_CRASH_SEED");
    if (env && *env)
        seed = strtoull(env, NULL, 10);
    if (seed == 0)
        seed = (uint64_t)time(NULL);
    return parent_main(iters, reset_every, seed, dir);
}
