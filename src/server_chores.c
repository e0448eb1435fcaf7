/*
 * server_chores.c - background upkeep on timers (WAL checkpoints, audit
 * retention), the audit trail's syncs, whose fsync runs on the thread pool
 * so the loop never waits for the disk, and retention's whole-file checks,
 * whose reads run there for the same reason.
 */
#include "server_int.h"
#include "app.h"
#include "audit.h"
#include "log.h"

#include <stdlib.h>
#include <time.h>

struct chore_req {
    uv_work_t req;
    struct server_chore_slot *slot;
    struct http_job *job;
};

static void chore_work(uv_work_t *req)
{
    struct chore_req *r = req->data;
    r->job->work(r->job);
}

static void chore_after(uv_work_t *req, int status)
{
    (void)status;
    struct chore_req *r = req->data;
    r->job->done(r->job, NULL);
    r->slot->running = false;
    free(r);
}

/* One job per chore at a time: a slow disk must not pile them up. */
static void on_chore(uv_timer_t *t)
{
    struct server_chore_slot *slot = t->data;
    if (slot->running || slot->srv->draining)
        return;
    struct http_job *job = slot->chore->make(slot->chore->arg);
    if (!job)
        return;
    struct chore_req *r = malloc(sizeof(*r));
    if (!r) {
        job->done(job, NULL);
        return;
    }
    r->slot = slot;
    r->job = job;
    r->req.data = r;
    if (uv_queue_work(&slot->srv->loop, &r->req, chore_work, chore_after) != 0) {
        job->done(job, NULL);
        free(r);
        return;
    }
    slot->running = true;
}

/* ---- refusals at the edge, summed up ----------------------------------------- */

const int server_reject_statuses[SERVER_REJECT_KINDS] = { 400, 408, 413, 414, 431, 0 };

static void report(struct server *s, const char *event, enum audit_result result, const char *reason, int status,
                   uint64_t *count)
{
    if (*count == 0)
        return;
    struct audit_event ev = { .event = event, .role = "anonymous", .result = result, .status = status,
                              .reason = reason, .count = *count };
    /* Else kept for the next report. (Queued and then lost to a failed
     * write, the line is counted among the lost events instead.) */
    if (audit_record(s->app->audit, &ev) == 0)
        *count = 0;
}

void server_report_rejects(struct server *s)
{
    if (!s->app || !s->app->audit)
        return;
    for (size_t i = 0; i < SERVER_REJECT_KINDS; i++)
        report(s, "http.rejected", AUDIT_DENY, server_reject_statuses[i] == 408 ? "timeout" : "framing",
               server_reject_statuses[i], &s->rejected[i]);
    report(s, "tls.rejected", AUDIT_DENY, "handshake", 0, &s->tls_failed);
    report(s, "tls.rejected", AUDIT_DENY, "renegotiation", 0, &s->tls_renegotiations);
    report(s, "conn.refused", AUDIT_DENY, "connection_cap", 0, &s->refused);
    report(s, "conn.refused", AUDIT_DENY, "connection_rate", 0, &s->refused_rate);
    /* Refused for the server's load, not for the request: an error, as the
     * router's request.refused lines are, but summed up like these. */
    report(s, "request.refused", AUDIT_ERROR, "hashing_busy", 503, &s->jobs_refused);
}

static void on_report_timer(uv_timer_t *t)
{
    server_report_rejects(t->data);
}

/* ---- audit syncs --------------------------------------------------------- */

static void on_sync_retry(uv_timer_t *t);

struct audit_req {
    uv_work_t req;
    struct server *srv;
    struct audit_sync sync;
};

static void audit_work(uv_work_t *req)
{
    struct audit_req *r = req->data;
    audit_sync_run(&r->sync);
}

/* A failed sync releases what it held (server_release_held(): the trail is
 * unhealthy, so answers wait only for their lines' write) and is tried
 * again from this timer. Started straight from the failure instead, the
 * next sync would fail at once too, and the loop would do nothing else. */
static void sync_done(struct server *s, const struct audit_sync *sync)
{
    struct server_chores *ch = &s->chores;
    audit_sync_end(s->app->audit, sync);
    if (sync->rc != 0 && ch->audit_retry_on && !uv_is_closing((uv_handle_t *)&ch->audit_retry_timer))
        uv_timer_start(&ch->audit_retry_timer, on_sync_retry, AUDIT_BATCH_MS, 0);
    server_release_held(s);
}

static void audit_after(uv_work_t *req, int status)
{
    (void)status;
    struct audit_req *r = req->data;
    struct server *s = r->srv;
    s->chores.audit_running = false;
    sync_done(s, &r->sync);
    free(r);
}

/* False only when out of memory: nothing started, nothing to wait for. */
static bool kick(struct server *s)
{
    struct audit *a = s->app ? s->app->audit : NULL;
    if (!a || s->chores.audit_running)
        return true;
    struct audit_req *r = malloc(sizeof(*r));
    if (!r)
        return false;   /* a timer or the next response tries again */
    if (!audit_sync_begin(a, &r->sync)) {
        free(r);
        return true;
    }
    r->srv = s;
    r->req.data = r;
    if (uv_queue_work(&s->loop, &r->req, audit_work, audit_after) != 0) {
        /* Cannot hand it over: sync here rather than lose the durability
         * promise (only when the thread pool is gone, i.e. never in use). */
        audit_sync_run(&r->sync);
        sync_done(s, &r->sync);
        free(r);
        return true;
    }
    s->chores.audit_running = true;
    return true;
}

void server_audit_kick(struct server *s)
{
    (void)kick(s);
}

static void on_sync_retry(uv_timer_t *t)
{
    struct server *s = t->data;
    if (!kick(s))
        uv_timer_start(t, on_sync_retry, AUDIT_BATCH_MS, 0);
}

/* ---- retention's whole-file checks ---------------------------------------- */

/* A file due by age goes only once every line of it verifies. The reads
 * run here on the pool, a part at a time; between them, back on the loop,
 * the part's MACs are checked (PSA has no threading support), so no loop
 * iteration spends more than one part's worth on it. */
struct check_req {
    uv_work_t req;
    struct server *srv;
    struct audit_check *check;
};

static void check_work(uv_work_t *req)
{
    struct check_req *r = req->data;
    audit_check_read(r->check);
}

/* The verdict is acted on at once (the trail's lock is taken as for any
 * line), unless the server is stopping: nothing more is pruned then, and a
 * check still queued at the stop was cancelled (UV_ECANCELED). */
static void check_after(uv_work_t *req, int status)
{
    struct check_req *r = req->data;
    struct server *s = r->srv;
    struct audit *a = s->app->audit;
    bool stop = status != 0 || s->draining;
    if (!stop && audit_check_next(r->check) && uv_queue_work(&s->loop, &r->req, check_work, check_after) == 0)
        return;
    s->chores.check = NULL;
    bool verdict = audit_check_end(a, r->check, stop);
    free(r);
    if (verdict && !s->draining)
        audit_enforce_retention(a, time(NULL));
}

/* The check retention waits for, if any, and none in flight. */
static void check_kick(struct server *s)
{
    struct audit *a = s->app->audit;
    if (s->chores.check || s->draining)
        return;
    struct audit_check *c = audit_check_begin(a);
    if (!c)
        return;
    struct check_req *r = malloc(sizeof(*r));
    if (r) {
        r->srv = s;
        r->check = c;
        r->req.data = r;
        if (uv_queue_work(&s->loop, &r->req, check_work, check_after) == 0) {
            s->chores.check = r;
            return;
        }
    }
    free(r);
    audit_check_end(a, c, true);       /* wanted again at retention's next run */
}

/* Runs right before the loop waits for I/O. The audit lines this iteration
 * queued go out in one write(2), then the responses they held; those may
 * answer requests already read and queue lines again, until none is left.
 * Then the lock goes: nobody else (the CLI) may wait for it while we wait
 * for clients. */
static void on_prepare(uv_prepare_t *p)
{
    struct server *s = p->data;
    struct audit *a = s->app->audit;
    do {
        audit_flush(a);
        server_release_held(s);
    } while (audit_written_seq(a) < audit_seq(a));
    audit_release(a);
    check_kick(s);
    /* Always mode: every line written and not yet on disk is synced from
     * here, whether an answer waits for it or not (a prune, the hourly
     * anchor, the reports). Not while unhealthy: a failed sync is retried
     * from its timer. */
    if (s->cfg->audit_sync == CONFIG_AUDIT_SYNC_ALWAYS && audit_healthy(a) &&
        audit_synced_seq(a) < audit_written_seq(a))
        server_audit_kick(s);
}

static void on_audit_timer(uv_timer_t *t)
{
    server_audit_kick(t->data);
}

void server_chores_start(struct server *s)
{
    struct server_chores *ch = &s->chores;
    const struct server_hooks *h = s->hooks;
    for (size_t i = 0; h && i < h->n_chores && i < SERVER_CHORES_MAX; i++) {
        struct server_chore_slot *slot = &ch->slot[ch->n];
        if (!h->chores[i].make || !h->chores[i].interval_ms)
            continue;
        slot->srv = s;
        slot->chore = &h->chores[i];
        uv_timer_init(&s->loop, &slot->timer);
        slot->timer.data = slot;
        uv_timer_start(&slot->timer, on_chore, slot->chore->interval_ms, slot->chore->interval_ms);
        ch->n++;
    }
    uv_timer_init(&s->loop, &ch->report_timer);
    ch->report_timer.data = s;
    uv_timer_start(&ch->report_timer, on_report_timer, SERVER_REJECT_REPORT_MS, SERVER_REJECT_REPORT_MS);
    ch->report_timer_on = true;
    if (s->app && s->app->audit) {
        /* One lock per loop iteration, not one per audit line. */
        uv_prepare_init(&s->loop, &ch->audit_prepare);
        ch->audit_prepare.data = s;
        uv_prepare_start(&ch->audit_prepare, on_prepare);
        ch->audit_prepare_on = true;
        audit_hold(s->app->audit, true);
        /* Serving: a whole file is read on the pool, never here. */
        audit_defer_checks(s->app->audit);
    }
    if (s->app && s->app->audit && s->cfg->audit_sync == CONFIG_AUDIT_SYNC_BATCH) {
        uv_timer_init(&s->loop, &ch->audit_timer);
        ch->audit_timer.data = s;
        uv_timer_start(&ch->audit_timer, on_audit_timer, AUDIT_BATCH_MS, AUDIT_BATCH_MS);
        ch->audit_timer_on = true;
    }
    if (s->app && s->app->audit && s->cfg->audit_sync == CONFIG_AUDIT_SYNC_ALWAYS) {
        uv_timer_init(&s->loop, &ch->audit_retry_timer);   /* started by a failed sync */
        ch->audit_retry_timer.data = s;
        ch->audit_retry_on = true;
    }
}

static void close_timer(uv_timer_t *t)
{
    if (!uv_is_closing((uv_handle_t *)t))
        uv_close((uv_handle_t *)t, NULL);
}

void server_chores_stop(struct server *s)
{
    struct server_chores *ch = &s->chores;
    for (size_t i = 0; i < ch->n; i++)
        close_timer(&ch->slot[i].timer);
    if (ch->audit_timer_on)
        close_timer(&ch->audit_timer);
    if (ch->audit_retry_on)
        close_timer(&ch->audit_retry_timer);
    if (ch->report_timer_on)
        close_timer(&ch->report_timer);
    /* A check not started yet never reads; one reading finishes, and the
     * loop waits for it (uv_run returns only once no request is active). */
    if (ch->check && uv_cancel((uv_req_t *)&ch->check->req) != 0)
        log_debug("stopping: waiting for retention's check of a file to finish its read");
    if (ch->audit_prepare_on && !uv_is_closing((uv_handle_t *)&ch->audit_prepare)) {
        uv_close((uv_handle_t *)&ch->audit_prepare, NULL);
        audit_hold(s->app->audit, false);
    }
}
