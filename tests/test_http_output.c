/*
 * Unit tests of http.c's output side: a response that does not fit, the
 * output budget, deferred answers (jobs) and their cancellation when the
 * connection goes, and the router's wiping of the connection's token memo.
 * Helpers: http_support.h.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "http_support.h"

/* ---- responses larger than the output buffer ------------------------------ */

static void big_dispatch(void *arg, const struct http_request *req, struct http_response *res)
{
    (void)arg;
    (void)req;
    static char chunk[1 << 20];
    memset(chunk, 'a', sizeof(chunk));
    res->status = 200;
    for (int i = 0; i < 16; i++)
        cr_assert_eq(buf_append(&res->body, chunk, sizeof(chunk)), 0);
}

Test(http, response_that_does_not_fit_is_replaced_by_a_500_that_closes, .init = setup)
{
    struct http_conn *h = http_conn_new(&http_default_limits, big_dispatch, NULL);
    cr_assert_not_null(h);
    char two[2 * sizeof(GOOD)];
    snprintf(two, sizeof(two), "%s%s", GOOD, GOOD);
    feed_str(h, two);
    struct buf *out = http_conn_output(h);
    const char *first = (const char *)out->data;
    cr_assert(strncmp(first, "HTTP/1.1 200 OK\r\n", 17) == 0);
    cr_assert(memmem(out->data, 4096, "Content-Length: 16777216\r\n", 26));
    const char *end_of_head = memmem(out->data, out->len, "\r\n\r\n", 4);
    cr_assert_not_null(end_of_head);
    size_t second_at = (size_t)(end_of_head + 4 - first) + (16u << 20);
    cr_assert_lt(second_at, out->len, "the second response is missing");
    cr_assert(strncmp(first + second_at, "HTTP/1.1 500 ", 13) == 0, "second response: %.40s", first + second_at);
    cr_assert(memmem(first + second_at, out->len - second_at, "Connection: close\r\n", 19));
    cr_assert(http_conn_should_close(h));
    http_conn_free(h);
}

/* After logout the connection's remembered token is wiped, not kept until
 * the next request or the close (router.c, api_auth.c: api_logout()). */
Test(router, forgetting_the_token_wipes_the_connection_memo)
{
    struct http_memo m;
    memset(&m, 0x5a, sizeof(m));
    m.len = 78;
    struct http_request req = { .memo = &m };
    struct route_ctx ctx = { .req = &req };
    route_forget_token(&ctx);
    cr_assert_eq(m.len, 0);
    for (size_t i = 0; i < sizeof(m.data); i++)
        cr_assert_eq(m.data[i], 0, "byte %zu survived", i);
    req.memo = NULL;
    route_forget_token(&ctx);            /* no memo (unit tests): no-op */
}

/* ---- deferred answers ---------------------------------------------------- */

struct seen_job {
    struct http_job base;
    int done_calls;
    bool cancelled_at_done;
};

static struct seen_job the_job;
static int defer_calls;

static void seen_done(struct http_job *job, struct http_response *res)
{
    (void)res;
    struct seen_job *j = (struct seen_job *)job;
    j->done_calls++;
    j->cancelled_at_done = job->cancelled;
}

static void seen_work(struct http_job *job)
{
    (void)job;
}

static void defer_dispatch(void *arg, const struct http_request *req, struct http_response *res)
{
    (void)arg;
    (void)req;
    defer_calls++;
    memset(&the_job, 0, sizeof(the_job));
    the_job.base.work = seen_work;
    the_job.base.done = seen_done;
    res->job = &the_job.base;
}

/* A connection whose request deferred a job (the_job), not yet taken. */
static struct http_conn *deferred_conn(const char *in)
{
    struct http_conn *h = http_conn_new(&http_default_limits, defer_dispatch, NULL);
    cr_assert_not_null(h);
    feed_str(h, in);
    cr_assert(http_conn_waiting(h));
    return h;
}

/* A connection freed while a handler's job waits unstarted (its work never
 * ran): done() must still release the job, and must be told the work did
 * not run, so it answers nothing and changes nothing. Before, done() ran as
 * if the work had finished, and a login job's zeroed result read as "the
 * password matched". */
Test(http, a_job_that_never_started_is_cancelled_when_its_connection_goes)
{
    struct http_conn *h = deferred_conn(GOOD);
    http_conn_free(h);
    cr_assert_eq(the_job.done_calls, 1, "done() ran %d times", the_job.done_calls);
    cr_assert(the_job.cancelled_at_done, "done() was not told that the work never ran");
}

Test(http, a_job_that_ran_is_not_cancelled)
{
    struct http_conn *h = deferred_conn(GOOD);
    struct http_job *job = http_conn_take_job(h);
    cr_assert_eq(job, &the_job.base);
    job->work(job);
    cr_assert_eq(http_conn_job_done(h), 0);
    cr_assert_eq(the_job.done_calls, 1);
    cr_assert_not(the_job.cancelled_at_done);
    http_conn_free(h);
    cr_assert_eq(the_job.done_calls, 1, "done() ran again at free");
}

/* The server closed the connection while a job ran (a reset, the end of
 * the shutdown grace): the requests pipelined behind the job must not run
 * once it finishes. They were parsed and dispatched, changes included,
 * for a client that was gone. */
Test(http, input_behind_a_job_is_dropped_when_the_connection_closes)
{
    defer_calls = 0;
    char two[2 * sizeof(GOOD)];
    snprintf(two, sizeof(two), "%s%s", GOOD, GOOD);
    struct http_conn *h = deferred_conn(two);
    cr_assert_eq(defer_calls, 1);
    struct http_job *job = http_conn_take_job(h);
    cr_assert_not_null(job);
    job->work(job);
    http_conn_discard_input(h);
    cr_assert_eq(http_conn_job_done(h), 0);
    cr_assert_eq(defer_calls, 1, "a request behind the job ran after the connection closed");
    cr_assert(http_conn_should_close(h));
    http_conn_free(h);
}

/* Answers `*(size_t *)arg` bytes of 'a' with status 200. */
static void sized_dispatch(void *arg, const struct http_request *req, struct http_response *res)
{
    (void)req;
    size_t n = *(const size_t *)arg;
    char *body = malloc(n);
    cr_assert_not_null(body);
    memset(body, 'a', n);
    res->status = 200;
    cr_assert_eq(buf_append(&res->body, body, n), 0);
    free(body);
}

/* A large answer whose handler did not ask the output budget is still
 * held to it: a 503 with Retry-After goes instead; a small answer always
 * goes. */
Test(http, a_large_answer_past_the_output_budget_is_a_503)
{
    struct http_out_budget budget = { 10 * HTTP_BIG_BODY, 10 * HTTP_BIG_BODY };
    struct http_limits lim = http_default_limits;
    lim.budget = &budget;
    size_t size = HTTP_BIG_BODY;
    struct http_conn *h = http_conn_new(&lim, sized_dispatch, &size);
    cr_assert_not_null(h);
    feed_str(h, GOOD);
    struct buf *out = http_conn_output(h);
    cr_assert(out->len > 12 && memcmp(out->data, "HTTP/1.1 503", 12) == 0, "%.40s", (const char *)out->data);
    cr_assert_not_null(memmem(out->data, out->len, "Retry-After: 5", 14));
    http_conn_output_sent(h);
    cr_assert_eq(budget.queued, 10 * HTTP_BIG_BODY, "the 503 sent still counts");
    budget.queued = 0;
    feed_str(h, GOOD);
    cr_assert(out->len > HTTP_BIG_BODY && memcmp(out->data, "HTTP/1.1 200", 12) == 0);
    struct buf taken;
    http_conn_take_output(h, &taken);
    cr_assert_eq(budget.queued, 0, "the answer taken still counts %zu bytes", budget.queued);
    cr_assert_eq(http_conn_output(h)->len, 0);
    buf_cleanup(&taken);
    http_conn_free(h);
    cr_assert_eq(budget.queued, 0);
}

/* One read answers every request it completes before the server sends
 * anything: each large answer must count against the budget as soon as it
 * is written, or all of them pass the check against the same empty budget
 * (three exports of 6 MB pipelined in one record were all answered under 8
 * MiB). */
Test(http, large_answers_pipelined_in_one_read_share_the_output_budget)
{
    struct http_out_budget budget = { 0, 3 * HTTP_BIG_BODY };
    struct http_limits lim = http_default_limits;
    lim.budget = &budget;
    size_t size = 2 * HTTP_BIG_BODY;   /* one fits, two do not */
    struct http_conn *h = http_conn_new(&lim, sized_dispatch, &size);
    cr_assert_not_null(h);
    char two[2 * sizeof(GOOD)];
    snprintf(two, sizeof(two), "%s%s", GOOD, GOOD);
    feed_str(h, two);
    struct buf *out = http_conn_output(h);
    cr_assert(out->len > size && memcmp(out->data, "HTTP/1.1 200", 12) == 0, "%.40s", (const char *)out->data);
    const uint8_t *second = memmem(out->data + 12, out->len - 12, "HTTP/1.1 ", 9);
    cr_assert_not_null(second, "one answer for two requests");
    cr_assert(memcmp(second, "HTTP/1.1 503", 12) == 0, "the second large answer: %.12s", (const char *)second);
    cr_assert_eq(budget.queued, out->len, "the budget counts %zu bytes of %zu built and unsent", budget.queued,
                 out->len);
    http_conn_free(h);
    cr_assert_eq(budget.queued, 0);
}

/* A connection closed with answers it never sent (held for their audit
 * line, or its client gone) gives back what they counted: the budget
 * counts them from the moment they are written. */
Test(http, a_connection_freed_with_answers_unsent_gives_their_budget_back)
{
    struct http_out_budget budget = { 0, 4 * HTTP_BIG_BODY };
    struct http_limits lim = http_default_limits;
    lim.budget = &budget;
    size_t size = HTTP_BIG_BODY;
    struct http_conn *h = http_conn_new(&lim, sized_dispatch, &size);
    cr_assert_not_null(h);
    feed_str(h, GOOD);
    const struct buf *out = http_conn_output(h);
    cr_assert(out->len > size && memcmp(out->data, "HTTP/1.1 200", 12) == 0);
    cr_assert_eq(budget.queued, out->len, "an answer built and unsent counts %zu bytes of %zu", budget.queued,
                 out->len);
    http_conn_free(h);
    cr_assert_eq(budget.queued, 0, "%zu bytes still counted for a connection that is gone", budget.queued);
}

/* The server took a job and then could not start it (no memory for its
 * queue entry, the pool refused it): the job must still be released, told
 * that its work never ran, and only once. It was left taken and never
 * released (its memory, and for a password job the password, kept). */
Test(http, a_taken_job_that_cannot_start_is_cancelled_once)
{
    struct http_conn *h = deferred_conn(GOOD);
    struct http_job *job = http_conn_take_job(h);
    cr_assert_eq(job, &the_job.base);
    http_conn_cancel_job(h);
    cr_assert_eq(the_job.done_calls, 1);
    cr_assert(the_job.cancelled_at_done);
    cr_assert_not(http_conn_waiting(h));
    http_conn_free(h);
    cr_assert_eq(the_job.done_calls, 1, "done() ran again at free");
}

/* The budget refuses only what a handler can ask about first (lists,
 * exports): a note's own answer is never turned into a 503 after its
 * change was committed and recorded, however full the budget is. */
Test(http, the_largest_one_note_answer_is_never_refused_by_the_budget)
{
    struct http_out_budget budget = { 1u << 30, 1u << 30 };
    struct http_limits lim = http_default_limits;
    lim.budget = &budget;
    /* The largest one-note answer: 64 KiB of content, each byte escaped as
     * \u00XX (6 bytes), and a title of the same kind. */
    size_t size = 6 * (65536 + 800) + 256;
    struct http_conn *h = http_conn_new(&lim, sized_dispatch, &size);
    cr_assert_not_null(h);
    feed_str(h, GOOD);
    struct buf *out = http_conn_output(h);
    cr_assert(out->len > 12 && memcmp(out->data, "HTTP/1.1 200", 12) == 0, "%.40s", (const char *)out->data);
    http_conn_free(h);
}
