/*
 * pool.c - the auth module's bounded thread pool (see pool.h).
 *
 * One mutex guards the FIFO, `pending` and `stop`; a pool thread pops a
 * job, runs it unlocked, leaves `pending` and posts the job to its loop.
 * Posting fails only when memory is exhausted: the thread retries for a
 * while (waiting on a pool thread is harmless), then releases the job, and
 * the client's CONNECT timeout closes the connection that waited for it.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "svc/auth/pool.h"

struct ep_auth_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    ep_auth_pool_job *head, *tail;
    uint32_t pending, max_pending;
    uint64_t next_id;
    bool stop;
    pthread_t *threads;
    unsigned n_threads;
    const ep_auth_pool_ops *ops;
    void *ud;
};

static void complete_on_loop(ep_loop *loop, void *arg)
{
    ep_auth_pool_job *j = arg;
    j->ops->complete(loop, j);
    j->ops->release(j);
}

static void deliver(ep_auth_pool_job *j)
{
    for (int i = 0; i < 200; i++) {
        if (ep_loop_post(j->loop, complete_on_loop, j) == EP_EOK)
            return;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    j->ops->release(j);
}

/* Pops the next job, waiting for one; NULL once stopped and empty.
 * Called and returns with p->lock held. */
static ep_auth_pool_job *pop(ep_auth_pool *p)
{
    while (p->head == NULL && !p->stop)
        pthread_cond_wait(&p->cond, &p->lock);
    ep_auth_pool_job *j = p->head;
    if (j != NULL) {
        p->head = j->next;
        if (p->head == NULL)
            p->tail = NULL;
    }
    return j;
}

static void *worker(void *arg)
{
    ep_auth_pool *p = arg;
    void *tls = p->ops->thread_init ? p->ops->thread_init(p->ud) : NULL;
    pthread_mutex_lock(&p->lock);
    for (ep_auth_pool_job *j; (j = pop(p)) != NULL;) {
        pthread_mutex_unlock(&p->lock);
        p->ops->run(p->ud, tls, j);
        pthread_mutex_lock(&p->lock);
        p->pending--;
        pthread_mutex_unlock(&p->lock);
        deliver(j);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    if (p->ops->thread_fini)
        p->ops->thread_fini(p->ud, tls);
    return NULL;
}

ep_err ep_auth__pool_new(ep_auth_pool **out, const ep_auth_pool_ops *ops, void *ud,
                         unsigned threads, uint32_t max_pending)
{
    ep_auth_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return EP_ENOMEM;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->ops = ops;
    p->ud = ud;
    p->max_pending = max_pending;
    p->next_id = 1;
    threads = threads ? threads : 1;
    ep_err err = EP_ENOMEM;
    if ((p->threads = calloc(threads, sizeof(*p->threads))) == NULL)
        goto fail;
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
            err = EP_ESYS;
            goto fail;
        }
        p->n_threads++;
    }
    *out = p;
    return EP_EOK;
fail:
    ep_auth__pool_free(p);
    return err;
}

void ep_auth__pool_free(ep_auth_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    ep_auth_pool_job *q = p->head;
    p->head = p->tail = NULL;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    while (q != NULL) {
        ep_auth_pool_job *next = q->next;
        p->ops->abort(q);
        deliver(q);
        q = next;
    }
    for (unsigned i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p);
}

ep_err ep_auth__pool_submit(ep_auth_pool *p, ep_auth_pool_job *j, ep_loop *loop, uint64_t *id)
{
    ep_err err = EP_EOK;
    pthread_mutex_lock(&p->lock);
    if (p->stop)
        err = EP_ECLOSED;
    else if (p->pending >= p->max_pending)
        err = EP_EFULL;
    if (err == EP_EOK) {
        j->id = p->next_id++;
        j->loop = loop;
        j->ops = p->ops;
        j->next = NULL;
        if (id != NULL)
            *id = j->id;
        if (p->tail)
            p->tail->next = j;
        else
            p->head = j;
        p->tail = j;
        p->pending++;
        pthread_cond_signal(&p->cond);
    }
    pthread_mutex_unlock(&p->lock);
    return err;
}

ep_err ep_auth__pool_cancel(ep_auth_pool *p, uint64_t id)
{
    ep_auth_pool_job *found = NULL;
    pthread_mutex_lock(&p->lock);
    for (ep_auth_pool_job **pp = &p->head, *prev = NULL; *pp != NULL;
         prev = *pp, pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            found = *pp;
            *pp = found->next;
            if (p->tail == found)
                p->tail = prev;
            p->pending--;
            break;
        }
    }
    pthread_mutex_unlock(&p->lock);
    if (found == NULL)
        return EP_ENOTFOUND;
    found->ops->release(found);
    return EP_EOK;
}

uint32_t ep_auth__pool_pending(ep_auth_pool *p)
{
    pthread_mutex_lock(&p->lock);
    uint32_t n = p->pending;
    pthread_mutex_unlock(&p->lock);
    return n;
}
