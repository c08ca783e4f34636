/*
 * pool.h - the thread pool behind the password verifier (verify.c) and the
 * custom-authentication callout (callout.c); internal to the auth module.
 *
 * It owns the machinery both share: a bounded FIFO of jobs under one
 * mutex, the pool threads, the hand-back of each finished job to the loop
 * that submitted it (ep_loop_post, where the job's completion runs and the
 * job is freed), cancellation of a job still queued, and shutdown, which
 * completes the queued jobs as aborted. What a job does, what it carries,
 * its counters and its error codes stay with the user.
 *
 * A job is a struct of the user's that embeds ep_auth_pool_job; the pool
 * links, numbers and delivers it through that header and reaches the rest
 * only through the ops. `pending` counts queued and running jobs and is
 * what max_pending bounds; a running job leaves it just before it is
 * posted. Once a job left the queue nothing but its pool thread and then
 * its loop touch it, so cancel only has to look in the queue.
 */
#ifndef EP_SVC_AUTH_POOL_H
#define EP_SVC_AUTH_POOL_H

#include <stdint.h>

#include "core/err.h"
#include "core/loop.h"

typedef struct ep_auth_pool_ops ep_auth_pool_ops;

/* The header a job embeds; the pool sets every field at submission. */
typedef struct ep_auth_pool_job ep_auth_pool_job;
struct ep_auth_pool_job {
    uint64_t id;
    ep_loop *loop;
    const ep_auth_pool_ops *ops; /* kept in the job: the pool may be gone
                                    when the job completes on its loop */
    ep_auth_pool_job *next;
};

/* What the pool calls; ops must outlive every job (a static const). */
struct ep_auth_pool_ops {
    /* thread_init (may be NULL) runs first on each pool thread; what it
     * returns is passed to run and then to thread_fini (may be NULL). */
    void *(*thread_init)(void *ud);
    void (*thread_fini)(void *ud, void *tls);
    /* run does the job's work on a pool thread, with no lock held. */
    void (*run)(void *ud, void *tls, ep_auth_pool_job *j);
    /* abort records, on the thread freeing the pool, that a queued job
     * will not run; it is then completed as usual. */
    void (*abort)(ep_auth_pool_job *j);
    /* complete runs on the job's loop; the job is released after it. */
    void (*complete)(ep_loop *loop, ep_auth_pool_job *j);
    /* release frees a job: after complete, on cancel, or when it cannot be
     * posted to its loop. Any thread. */
    void (*release)(ep_auth_pool_job *j);
};

typedef struct ep_auth_pool ep_auth_pool;

/* ep_auth__pool_new starts `threads` pool threads (at least 1) that call
 * ops with ud. Startup: any thread. Returns EP_EOK, EP_ENOMEM, EP_ESYS
 * (thread creation failed; the threads started are stopped). */
ep_err ep_auth__pool_new(ep_auth_pool **out, const ep_auth_pool_ops *ops, void *ud,
                         unsigned threads, uint32_t max_pending);

/* ep_auth__pool_free stops the pool: each queued job is aborted and posted
 * to its loop (which must still exist), running ones finish, the threads
 * are joined. NULL accepted. Not on a pool thread. */
void ep_auth__pool_free(ep_auth_pool *p);

/* ep_auth__pool_submit queues j (the caller keeps ownership on failure)
 * for `loop`; *id (may be NULL) is set before any pool thread can see j.
 * Any thread. Returns EP_EOK, EP_ECLOSED (the pool is stopping), EP_EFULL
 * (max_pending queued or running). */
ep_err ep_auth__pool_submit(ep_auth_pool *p, ep_auth_pool_job *j, ep_loop *loop, uint64_t *id);

/* ep_auth__pool_cancel removes the queued job `id` and releases it: it
 * will not complete. Any thread. Returns EP_EOK, or EP_ENOTFOUND (running
 * or done: its completion still comes). */
ep_err ep_auth__pool_cancel(ep_auth_pool *p, uint64_t id);

/* ep_auth__pool_pending returns the number of queued and running jobs. */
uint32_t ep_auth__pool_pending(ep_auth_pool *p);

#endif
