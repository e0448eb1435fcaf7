/*
 * server_jobs.c - the handler job queue: work a handler deferred (password
 * hashing) runs on libuv's thread pool, at most SERVER_JOBS_MAX at once, the
 * rest waiting in arrival order, at most SERVER_JOBS_WAIT_MAX of them (past
 * that, the request is answered 503).
 *
 * Owns the job requests and the wait list in struct server; a job's
 * connection stays server.c's, pinned by one handle count while its job
 * waits or runs. job_work() runs on a pool thread and touches only its job;
 * everything else here runs on the event loop. It must never run a
 * handler's work on the loop, let a connection read past a request whose
 * job has not answered (answers stay in order), or free a connection before
 * its job is done: a started job whose client left still finishes, so its
 * effects are consistent. A job still waiting when its client leaves has
 * done nothing yet: it is cancelled and never runs.
 */
#include "server_int.h"
#include "err.h"
#include "log.h"

#include <stdlib.h>
#include <uv.h>

/* libuv's pool has 4 threads (UV_THREADPOOL_SIZE is not set). Handler
 * jobs hash passwords: ~19 MiB and tens of milliseconds each. Two at most,
 * so a login storm leaves two threads for the audit sync and the
 * checkpoint (a held write answers within a sync, not behind argon2), gives
 * argon2 at most two nice-10 threads against the loop, and bounds its
 * memory at 2 x m. */
#define SERVER_JOBS_MAX 2

struct job_req {
    uv_work_t req;
    struct conn *conn;
    struct http_job *job;
    TAILQ_ENTRY(job_req) link; /* in server.jobs_wait while waiting */
};

static void job_after(uv_work_t *req, int status);

static void job_work(uv_work_t *req)
{
    struct job_req *j = req->data;
    j->job->work(j->job);
}

static int job_submit(struct server *s, struct job_req *j)
{
    if (uv_queue_work(&s->loop, &j->req, job_work, job_after) != 0)
        return ERR_INTERNAL;
    s->jobs_running++;
    log_debug("handler job started (%u running)", s->jobs_running);
    return 0;
}

/* Off the wait list: to run, or cancelled. */
static void job_unqueue(struct server *s, struct job_req *j)
{
    TAILQ_REMOVE(&s->jobs_wait, j, link);
    s->jobs_waiting--;
    j->conn->job_queued = NULL;
}

/* A pool slot came free: the longest-waiting job takes it. */
static void job_next(struct server *s)
{
    struct job_req *j = TAILQ_FIRST(&s->jobs_wait);
    if (!j || s->jobs_running >= SERVER_JOBS_MAX)
        return;
    job_unqueue(s, j);
    server_conn_update_reading(j->conn);   /* no longer listening for a hang-up */
    if (job_submit(s, j) == 0)
        return;
    /* uv_queue_work fails only without a work callback: cannot happen.
     * Fail closed: the job never answers, its connection closes. */
    log_error("cannot start a queued job");
    struct conn *c = j->conn;
    free(j);
    c->job_running = false;
    http_conn_cancel_job(c->http);
    if (!c->closing)
        server_conn_close(c);
    server_conn_release(c);
}

/* Back on the loop: answer, then carry on with the connection, unless it
 * closed meanwhile (the job still finishes so its effects are consistent). */
static void job_after(uv_work_t *req, int status)
{
    (void)status;
    struct job_req *j = req->data;
    struct conn *c = j->conn;
    struct server *s = c->srv;
    free(j);
    s->jobs_running--;
    job_next(s);             /* the longest waiter first, then this one's next */
    c->job_running = false;
    if (c->closing)   /* the client is gone: what it pipelined must not run */
        http_conn_discard_input(c->http);
    int rc = http_conn_job_done(c->http);
    if (!c->closing) {
        /* The buffered bytes behind the request may hold another one that
         * defers again: start that job before reading any further. */
        if (rc != 0 || server_conn_send_responses(c) != 0 || server_conn_start_job(c) != 0) {
            server_conn_close(c);
        } else if (http_conn_should_close(c->http)) {
            server_conn_finish(c);
        } else if (!http_conn_waiting(c->http)) {
            server_conn_drive(c);
        }
    }
    server_conn_release(c);
}

/* Every slot is taken: wait at the tail. The debug line is what tests wait
 * for to know a job is queued (and an operator, how long the queue gets). */
static void job_enqueue(struct server *s, struct job_req *j)
{
    TAILQ_INSERT_TAIL(&s->jobs_wait, j, link);
    s->jobs_waiting++;
    j->conn->job_queued = j;
    log_debug("handler job queued (%u waiting)", s->jobs_waiting);
}

void server_conn_cancel_job(struct conn *c)
{
    struct job_req *j = c->job_queued;
    if (!j)
        return;
    struct server *s = c->srv;
    job_unqueue(s, j);
    c->job_running = false;
    free(j);
    http_conn_cancel_job(c->http);   /* done() sees `cancelled`: it only frees */
    log_debug("handler job cancelled (%u waiting)", s->jobs_waiting);
    server_conn_release(c);          /* the pin the job held */
}

/* Every slot is taken and SERVER_JOBS_WAIT_MAX wait: answer 503 instead of
 * queueing (the job is cancelled: nothing ran). The refusals are summed up
 * in the audit trail like the other refusals under load. */
static int job_refuse(struct conn *c)
{
    struct server *s = c->srv;
    s->jobs_refused++;
    log_debug("handler job refused (%u waiting)", s->jobs_waiting);
    int rc = http_conn_refuse_job(c->http, "The server is busy; try again later.", "5");
    return rc ? rc : server_conn_send_responses(c);
}

static bool queue_full(const struct server *s)
{
    return s->jobs_running >= SERVER_JOBS_MAX && s->jobs_waiting >= SERVER_JOBS_WAIT_MAX;
}

/* A handler deferred work: run it on the thread pool (or queue it for a
 * slot) and stop reading until it answers, so requests behind it wait in
 * order. A refused request's answer may let one behind it defer again. */
int server_conn_start_job(struct conn *c)
{
    struct server *s = c->srv;
    struct http_job *job;
    while ((job = http_conn_take_job(c->http)) && queue_full(s)) {
        int rc = job_refuse(c);
        if (rc)
            return rc;
    }
    if (!job)
        return 0;
    struct job_req *j = calloc(1, sizeof(*j));
    if (!j) {
        http_conn_cancel_job(c->http);   /* released, not leaked; the caller closes */
        return ERR_NOMEM;
    }
    j->conn = c;
    j->job = job;
    j->req.data = j;
    if (s->jobs_running < SERVER_JOBS_MAX) {
        if (job_submit(s, j) != 0) {
            free(j);
            http_conn_cancel_job(c->http);
            return ERR_INTERNAL;
        }
    } else {
        job_enqueue(s, j);
    }
    c->handles_open++;
    c->job_running = true;
    server_conn_update_reading(c);
    return 0;
}
