/*
 * sync.c - synchronous helpers: run the client's loop until a flag is set.
 * For the CLI and tests only; services never block their loop.
 */
#include "svc/opcua_client/uac_int.h"

ep_err ep_uac_sync_wait(ep_uac *c, const int *done, uint32_t timeout_ms)
{
    ep_loop_update_time(c->loop);
    uint64_t end = ep_loop_now(c->loop) + timeout_ms;
    while (!*done) {
        uint64_t now = ep_loop_now(c->loop);
        if (now >= end)
            return EP_ETIMEDOUT;
        uint64_t left = end - now;
        ep_err err = ep_loop_run_once(c->loop, left > 100 ? 100 : (int)left);
        if (err != EP_EOK)
            return err;
        ep_loop_update_time(c->loop);
    }
    return EP_EOK;
}

typedef struct sync_res {
    int done;
    ep_err err;
    ep_ua_status st;
} sync_res;

static void sync_done(ep_uac *c, ep_err err, ep_ua_status st, void *ud)
{
    (void)c;
    sync_res *r = ud;
    r->err = err;
    r->st = st;
    r->done = 1;
}

static ep_err finish(ep_uac *c, sync_res *r, ep_err err, ep_ua_status *st)
{
    if (err == EP_EOK)
        err = ep_uac_sync_wait(c, &r->done, c->opts.connect_timeout_ms * 3 + 1000);
    if (err == EP_EOK)
        err = r->err;
    if (st)
        *st = r->done ? r->st : EP_UA_STATUS_BadTimeout;
    return err;
}

ep_err ep_uac_sync_connect(ep_uac *c, ep_ua_status *st)
{
    sync_res r = {0, EP_EOK, 0};
    return finish(c, &r, ep_uac_connect(c, sync_done, &r), st);
}

ep_err ep_uac_sync_discover(ep_uac *c, ep_ua_status *st)
{
    sync_res r = {0, EP_EOK, 0};
    return finish(c, &r, ep_uac_discover(c, sync_done, &r), st);
}

ep_err ep_uac_sync_disconnect(ep_uac *c)
{
    sync_res r = {0, EP_EOK, 0};
    ep_err err = ep_uac_disconnect(c, sync_done, &r);
    if (err == EP_ESTATE)
        return EP_EOK;
    return finish(c, &r, err, NULL);
}
