/*
 * server_jobs.c - the handler job queue: work a handler deferred (password
 * hashing) runs on libuv's thread pool, at most SERVER_JOBS_MAX at once, the
 * rest waiting in arrival order.
 *
 * Owns the job requests and the wait list in struct server; a job's
 * connection stays server.c's, pinned by one handle count while its job
 * waits or runs. job_work() runs on a pool thread and touches only its job;
 * everything else here runs on the event loop. It must never run a
 * handler's work on the loop, let a connection read past a request whose
 * job has not answered (answers stay in order), or free a connection before
 * its job is done: a job whose client left still finishes, so its effects
 * are consistent.
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
    struct job_req *next;      /* in server.jobs_wait */
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

/* A pool slot came free: the longest-waiting job takes it. */
static void job_next(struct server *s)
{
    struct job_req *j = s->jobs_wait;
    if (!j || s->jobs_running >= SERVER_JOBS_MAX)
        return;
    s->jobs_wait = j->next;
    s->jobs_waiting--;
    if (!s->jobs_wait)
        s->jobs_wait_tail = NULL;
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
    if (s->jobs_wait_tail)
        s->jobs_wait_tail->next = j;
    else
        s->jobs_wait = j;
    s->jobs_wait_tail = j;
    s->jobs_waiting++;
    log_debug("handler job queued (%u waiting)", s->jobs_waiting);
}

/* A handler deferred work: run it on the thread pool (or queue it for a
 * slot) and stop reading until it answers, so requests behind it wait in
 * order. A closed connection's queued job still runs, as a running one
 * still finishes. */
int server_conn_start_job(struct conn *c)
{
    struct server *s = c->srv;
    struct http_job *job = http_conn_take_job(c->http);
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
