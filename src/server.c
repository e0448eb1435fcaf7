/*
 * server.c - connection lifetime: read, TLS, HTTP, write, close (accepting
 * and the connection caps: server_accept.c).
 *
 * Owns every connection; the loop, the listener and the signals are set up
 * and torn down in server_life.c, and work a handler defers waits for the
 * thread pool in server_jobs.c. A connection is a uv_tcp_t plus a
 * tls_conn and an http_conn: bytes read are fed to TLS, decrypted bytes to
 * HTTP, responses are encrypted and written (uv_try_write, then uv_write
 * for what the socket does not take). Nothing on this thread blocks. A
 * connection is freed only after libuv closed both of its handles (Kore's
 * deferred prune), and a write buffer lives until its write callback ran.
 */
#include "server.h"
#include "server_int.h"
#include "err.h"
#include "log.h"
#include "app.h"
#include "audit.h"

#include <linux/sockios.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <uv.h>

/* Backpressure: a client that sends requests but does not read responses
 * stops being read above HIGH and is read again below LOW. */
#define WRITE_HIGH_WATER (256 * 1024)
#define SEND_SLICE (128 * 1024)        /* plaintext encrypted per TLS output flush */
#define WRITE_LOW_WATER (64 * 1024)
/* A closing connection reads and drops input until the client has been
 * silent this long, and no longer than the total: nginx's lingering_timeout
 * and lingering_time. */
#define LINGER_IDLE_MS 5000
#define LINGER_TOTAL_MS 30000

struct write_req {
    uv_write_t req;
    struct conn *conn;
    struct buf data;
    size_t queued;             /* counted in the output budget until written */
};

static void unhold(struct conn *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *b);

/* ---- connection lifetime ---------------------------------------------- */

void server_conn_release(struct conn *c)
{
    if (--c->handles_open > 0)
        return;
    struct server *s = c->srv;
    tls_conn_free(c->tls);
    http_conn_free(c->http);
    free(c);
    server_maybe_finish(s);
}

static void on_handle_closed(uv_handle_t *h)
{
    server_conn_release(h->data);
}

/* Sum up what the edge refused, for the audit trail's periodic report. */
static void count_refusal(struct conn *c)
{
    struct server *s = c->srv;
    int status = c->http ? http_conn_rejected(c->http) : 0;
    if (status) {
        size_t i = 0;
        while (i < SERVER_REJECT_KINDS - 1 && server_reject_statuses[i] != status)
            i++;
        s->rejected[i]++;
    } else if (c->tls && !tls_conn_handshake_done(c->tls)) {
        s->tls_failed++;
    } else if (c->tls && tls_conn_renegotiation_refused(c->tls)) {
        s->tls_renegotiations++;
    }
}

void server_conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    struct server *s = c->srv;
    server_conn_cancel_job(c);   /* a job not started yet need not run at all */
    if (c->held)
        unhold(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    count_refusal(c);
    server_ip_release(&s->ips, c->ip);
    c->ip = NULL;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    if (status < 0 && !c->closing)
        server_conn_close(c);
}

/* Is the client perhaps still sending? When its request was refused at the
 * edge (a 413 before the body, a 400), or it sent more than was answered:
 * in TLS or HTTP, or still in the socket (a pipelining client at a close
 * the server chose). A request answered in full, the client's own
 * Connection: close or an idle keep-alive leave nothing to come. */
static bool may_still_send(struct conn *c)
{
    if (http_conn_rejected(c->http) != 0 || tls_conn_unread(c->tls) > 0 || http_conn_holds_input(c->http))
        return true;
    uv_os_fd_t fd;
    int unread = 0;
    return uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 && ioctl(fd, FIONREAD, &unread) == 0 && unread > 0;
}

/* Has the client's kernel acknowledged every byte we sent? Then closing
 * now is safe even with its input unread (most closes: small answers on a
 * quick path). SIOCOUTQ counts what is sent but not acknowledged. */
static bool all_acked(struct conn *c)
{
    uv_os_fd_t fd;
    int queued = -1;
    return uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 && ioctl(fd, SIOCOUTQ, &queued) == 0 && queued == 0;
}

/* Everything is handed to the kernel: end our side with a FIN, then read
 * and drop what the client still sends until it closes or goes quiet.
 * Closing a socket whose input is unread resets the connection at once, and
 * the reset drops whatever of our answers the kernel still held (the 413
 * refusing a body the client is still sending, behind a large answer), as
 * nginx's lingering close avoids. Nothing read now is looked at. A
 * connection with a password job (queued or running) closes as before: the
 * job is cancelled or pins it, and its answer has nowhere to go. */
static void linger(struct conn *c)
{
    if (c->job_running || !may_still_send(c) || all_acked(c)) {
        server_conn_close(c);   /* no input to come, or nothing of ours a reset could drop */
        return;
    }
    c->close_after_flush = false;
    c->lingering = true;
    c->linger_end = uv_now(&c->srv->loop) + LINGER_TOTAL_MS;
    c->linger_until = uv_now(&c->srv->loop) + LINGER_IDLE_MS;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        server_conn_close(c);
        return;
    }
    if (!c->reading)
        c->reading = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0;
    server_conn_schedule(c);
}

static void on_write(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct conn *c = w->conn;
    struct http_out_budget *budget = c->srv->limits->budget;
    if (budget)
        budget->queued -= w->queued;
    buf_cleanup(&w->data);
    free(w);
    c->writes_pending--;
    if (status < 0) {
        server_conn_close(c);
        return;
    }
    if (c->closing)
        return;
    if (c->close_after_flush && c->writes_pending == 0) {
        linger(c);
        return;
    }
    c->last_write = uv_now(&c->srv->loop);
    if (c->close_after_flush) {   /* the rest still owes the send deadline */
        server_conn_schedule(c);
        return;
    }
    if (!c->reading && !c->job_running && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < WRITE_LOW_WATER)
        server_conn_drive(c);   /* drains what TLS still holds, then resumes reading */
    else
        server_conn_schedule(c);
}

/* Hand the ciphertext TLS produced to the socket, without copying it. Most
 * responses fit the socket buffer: one write(2) now, and the buffer is
 * freed at once. uv_write is kept for what the socket does not take (it
 * costs a request, a deferred callback and an epoll_ctl per response). */
static int flush(struct conn *c)
{
    struct buf *out = tls_conn_output(c->tls);
    if (out->len == 0 || c->closing)
        return 0;
    c->ticket_held = false;   /* it leaves with whatever is written now */
    size_t sent = 0;
    if (c->writes_pending == 0) {
        uv_buf_t now = uv_buf_init((char *)out->data, (unsigned)out->len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &now, 1);
        if (n < 0 && n != UV_EAGAIN)
            return ERR_IO;
        sent = n > 0 ? (size_t)n : 0;
        if (sent)
            c->last_write = uv_now(&c->srv->loop);
        if (sent == out->len) {
            size_t max = out->max;
            buf_cleanup(out);
            buf_init(out, max);
            return 0;
        }
    }
    struct write_req *w = malloc(sizeof(*w));
    if (!w)
        return ERR_NOMEM;
    w->conn = c;
    w->data = *out;
    buf_init(out, w->data.max);
    uv_buf_t b = uv_buf_init((char *)w->data.data + sent, (unsigned)(w->data.len - sent));
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        buf_cleanup(&w->data);
        free(w);
        return ERR_IO;
    }
    w->queued = w->data.len - sent;
    if (c->srv->limits->budget)
        c->srv->limits->budget->queued += w->queued;
    c->writes_pending++;
    return 0;
}

/* Send close_notify and whatever is queued, then close. */
void server_conn_finish(struct conn *c)
{
    if (c->lingering || c->closing)
        return;                /* already ending */
    if (c->held) {             /* its last response waits for its audit line */
        c->finish_when_released = true;
        return;
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
    tls_conn_close_notify(c->tls);
    if (flush(c) != 0) {
        server_conn_close(c);
        return;
    }
    if (c->writes_pending == 0) {
        linger(c);
        return;
    }
    c->close_after_flush = true;
    /* Called from a job's or a held answer's completion too, where no
     * deadline runs: a client that stops reading is cut at the send
     * timeout, not kept with its queued output. */
    server_conn_schedule(c);
}

static uint64_t secs(uint32_t s)
{
    return (uint64_t)s * 1000;
}

/* Note where the connection is in its request cycle, for the deadlines. */
static void track_phase(struct conn *c)
{
    uint64_t now = uv_now(&c->srv->loop);
    enum http_phase phase = http_conn_phase(c->http);
    uint64_t requests = http_conn_requests(c->http);
    if (requests != c->requests_seen) {   /* a new request began */
        c->requests_seen = requests;
        c->request_start = now;
    }
    if (phase == HTTP_PHASE_BODY && c->phase != HTTP_PHASE_BODY)
        c->body_start = now;
    /* Idle since now when a request ended, even one begun and answered
     * within this same read (the phase then never looked busy). */
    if (phase == HTTP_PHASE_IDLE && (c->phase != HTTP_PHASE_IDLE || requests != c->requests_idle)) {
        c->idle_since = now;
        c->requests_idle = requests;
    }
    c->phase = phase;
}

/* The one deadline that applies now (nginx's model, stricter): handshake,
 * whole header block from its first byte, body idle and total, keep-alive
 * idle, and a client that stops reading our output. */
static uint64_t deadline(const struct conn *c)
{
    const struct config *cfg = c->srv->cfg;
    if (c->lingering)
        return c->linger_until;
    if (uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp) > 0)
        return c->last_write + secs(cfg->timeout_send_s);
    if (!tls_conn_handshake_done(c->tls))
        return c->accepted_at + secs(cfg->timeout_handshake_s);
    switch (c->phase) {
    case HTTP_PHASE_HEADERS:
        return c->request_start + secs(cfg->timeout_header_s);
    case HTTP_PHASE_BODY: {
        uint64_t idle = c->last_read + secs(cfg->timeout_body_idle_s);
        uint64_t total = c->body_start + secs(cfg->timeout_body_s);
        return idle < total ? idle : total;
    }
    case HTTP_PHASE_WAITING:
        return 0;
    case HTTP_PHASE_IDLE:
        break;
    }
    return c->idle_since + secs(cfg->timeout_keepalive_s);
}

static void on_timeout(uv_timer_t *t)
{
    struct conn *c = t->data;
    if (c->closing || c->job_running)
        return;
    if (c->lingering) {
        server_conn_close(c);
        return;
    }
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > 0 || !tls_conn_handshake_done(c->tls)) {
        server_conn_close(c);   /* slow reader or stalled handshake: nothing more to say */
        return;
    }
    if (c->phase == HTTP_PHASE_HEADERS || c->phase == HTTP_PHASE_BODY) {
        http_conn_timed_out(c->http);   /* 408, then close */
        if (server_conn_send_responses(c) != 0) {
            server_conn_close(c);
            return;
        }
    }
    server_conn_finish(c);
}

void server_conn_schedule(struct conn *c)
{
    if (c->closing)
        return;
    uint64_t when = c->job_running ? 0 : deadline(c);
    if (when == 0) {
        uv_timer_stop(&c->timer);
        return;
    }
    uint64_t now = uv_now(&c->srv->loop);
    uv_timer_start(&c->timer, on_timeout, when > now ? when - now : 0, 0);
}

/* A job waiting for a hashing slot has not started: if its client leaves
 * (EOF, a reset, close_notify) it is cancelled and never runs. So the
 * socket is still read then, but only until input arrives behind the
 * request: that is held (http_conn_holds_input()) and reading stops, as for
 * a running job, so a pipelining client is held back as before. */
static bool listening_while_queued(const struct conn *c)
{
    return c->job_queued && !http_conn_holds_input(c->http);
}

/* Read from the socket only while nothing holds us back: a running job
 * (answers stay in order), a response waiting for an audit sync, or a
 * client that is not reading our output. A response waiting for its audit
 * line's write(2) is sent before the loop polls again, and stopping and
 * restarting the reads for it would cost two epoll_ctl calls a request; so
 * reading stops then only once input piles up behind it (libuv reads up to
 * 32 times in one turn, more than TLS may hold unread). */
void server_conn_update_reading(struct conn *c)
{
    bool hold_blocks = c->held && (c->srv->cfg->audit_sync == CONFIG_AUDIT_SYNC_ALWAYS ||
                                   tls_conn_unread(c->tls) > 0);
    bool job_blocks = c->job_running && !(listening_while_queued(c) && tls_conn_unread(c->tls) == 0);
    bool want = !c->closing && (c->lingering || (!c->close_after_flush && !job_blocks && !hold_blocks &&
                                                 uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) <
                                                     WRITE_HIGH_WATER));
    if (want && !c->reading)
        c->reading = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0;
    else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

/* ---- responses held for their audit lines ------------------------------- */

/* Audit lines up to this seq are as far as a response needs them: in the
 * file (write(2) returned), or on disk with NOTES_AUDIT_SYNC=always while
 * the trail is healthy. Once a write or a sync failed, no change commits
 * until one works again (router.c: guard_end()), and the changes already
 * made are released with the failure (threat model §6): a response then
 * waits for its line's write alone, as under batch. Waiting for the sync
 * instead would hold every answer, reads and refusals too, for as long as
 * the disk fails. */
static uint64_t audit_reached(const struct server *s)
{
    const struct audit *a = s->app ? s->app->audit : NULL;
    return s->cfg->audit_sync == CONFIG_AUDIT_SYNC_ALWAYS && audit_healthy(a) ? audit_synced_seq(a)
                                                                               : audit_written_seq(a);
}

static void hold(struct conn *c, uint64_t seq)
{
    c->held = true;
    c->hold_seq = seq;
    TAILQ_INSERT_TAIL(&c->srv->held, c, held_link);
}

static void unhold(struct conn *c)
{
    TAILQ_REMOVE(&c->srv->held, c, held_link);
    c->held = false;
}

/* Move HTTP's plaintext output through TLS to the socket. */
int server_conn_send_responses(struct conn *c)
{
    struct buf *plain = http_conn_output(c->http);
    if (plain->len == 0 || c->held)
        return 0;   /* a held connection sends everything once released */
    struct audit *a = c->srv->app ? c->srv->app->audit : NULL;
    if (audit_reached(c->srv) < audit_seq(a)) {
        /* A response leaves only after every audit line recorded so far:
         * the loop writes an iteration's lines with one write(2) before it
         * polls again (server_chores.c), and with NOTES_AUDIT_SYNC=always
         * one sync then releases them all. */
        hold(c, audit_seq(a));   /* on_prepare() writes, then kicks the sync */
        return 0;
    }
    int rc = 0;
    /* Encrypt and hand over in slices: a large response never needs more
     * than one slice of ciphertext buffered in TLS at a time. */
    for (size_t off = 0; off < plain->len && rc == 0; off += SEND_SLICE) {
        size_t n = plain->len - off < SEND_SLICE ? plain->len - off : SEND_SLICE;
        rc = tls_conn_write(c->tls, plain->data + off, n);
        /* The last answer of a closing connection takes its close_notify
         * along in the same write (server_conn_finish() sends no second). */
        if (rc == 0 && off + n == plain->len && http_conn_should_close(c->http))
            tls_conn_close_notify(c->tls);
        rc = rc ? rc : flush(c);
    }
    /* Counted until now as built; from here its ciphertext counts, while
     * the socket has not taken it (flush(), on_write()). */
    http_conn_output_sent(c->http);
    return rc;
}

void server_conn_drive(struct conn *c)
{
    struct server *s = c->srv;
    if (!tls_conn_handshake_done(c->tls)) {
        int rc = tls_conn_handshake(c->tls);
        /* Once TLS 1.3's handshake is done, what the server has written
         * since its Finished is the session ticket, which no client waits
         * for: it leaves with the first answer, or with the close_notify,
         * instead of in a write(2) and a TCP segment of its own. (A TLS 1.2
         * client waits for the server's last flight: that leaves now.) */
        c->ticket_held = rc == 0 && tls_conn_is_tls13(c->tls);
        if ((!c->ticket_held && flush(c) != 0) || (rc != 0 && rc != ERR_WANT_IO)) {
            server_conn_close(c);
            return;
        }
        if (rc == ERR_WANT_IO) {
            server_conn_update_reading(c);
            server_conn_schedule(c);
            return;
        }
        c->idle_since = uv_now(&s->loop);
        log_debug("TLS handshake done: %s %s%s", tls_conn_version(c->tls), tls_conn_suite(c->tls),
                  tls_conn_resumed(c->tls) ? " (resumed)" : "");
    }
    /* Decrypt and answer until TLS needs more bytes, a job takes over, or
     * the client has too much unread output (then TLS keeps the rest). */
    while ((!http_conn_waiting(c->http) || listening_while_queued(c)) && !c->held &&
           uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < WRITE_HIGH_WATER) {
        size_t got = 0;
        int rc = tls_conn_read(c->tls, s->plain_buf, sizeof(s->plain_buf), &got);
        if (rc == ERR_WANT_IO)
            break;
        if (rc == ERR_CLOSED) {
            server_conn_finish(c);
            return;
        }
        if (rc != 0 && tls_conn_renegotiation_refused(c->tls)) {
            server_conn_finish(c);   /* the alert leaves, under the send deadline */
            return;
        }
        if (rc != 0) {
            server_conn_close(c);
            return;
        }
        /* mbedTLS never updates a connection's keys (no TLS 1.3 KeyUpdate),
         * and TLS 1.3 allows AES-GCM 2^24.5 records per key (RFC 8446
         * 5.5): past NOTES_TLS_MAX_RECORDS (at most 2^24) the next answer
         * closes, which leaves a margin of millions of records for it. */
        if (tls_conn_records_out(c->tls) >= s->cfg->tls_max_records)
            http_conn_set_draining(c->http);
        if (http_conn_feed(c->http, s->plain_buf, got) != 0 || server_conn_send_responses(c) != 0 ||
            server_conn_start_job(c) != 0) {
            server_conn_close(c);
            return;
        }
        track_phase(c);
        if (http_conn_should_close(c->http)) {
            server_conn_finish(c);
            return;
        }
    }
    /* TLS may write while it reads (an alert refusing a renegotiation).
     * Sent now, those bytes count against the write queue's high-water
     * mark, the send deadline and the output budget like a response;
     * left in TLS they would wait for the next response or keep-alive. */
    if (!c->ticket_held && flush(c) != 0) {
        server_conn_close(c);
        return;
    }
    if (s->draining && !http_conn_in_request(c->http) && !http_conn_waiting(c->http)) {
        server_conn_finish(c);
        return;
    }
    track_phase(c);
    if (c->phase == HTTP_PHASE_IDLE && !c->held && !c->job_running) {
        /* Every byte read is answered: let go of the buffers. */
        http_conn_trim(c->http);
        tls_conn_trim(c->tls);
    }
    server_conn_update_reading(c);
    server_conn_schedule(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct conn *c = h->data;
    b->base = (char *)c->srv->read_buf;
    b->len = sizeof(c->srv->read_buf);
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = stream->data;
    if (n == 0)
        return;
    if (n < 0) {
        server_conn_close(c);   /* EOF without close_notify, a reset, or the end of a linger */
        return;
    }
    if (c->lingering) {         /* dropped; the client may stay quiet LINGER_IDLE_MS more */
        uint64_t until = uv_now(&c->srv->loop) + LINGER_IDLE_MS;
        c->linger_until = until < c->linger_end ? until : c->linger_end;
        server_conn_schedule(c);
        return;
    }
    c->last_read = uv_now(&c->srv->loop);
    if (tls_conn_feed(c->tls, (const uint8_t *)b->base, (size_t)n) != 0) {
        server_conn_close(c);
        return;
    }
    server_conn_drive(c);
}

static void release_one(struct conn *c)
{
    unhold(c);
    if (server_conn_send_responses(c) != 0) {
        server_conn_close(c);
        return;
    }
    if (c->held)
        return;   /* more lines were written meanwhile: wait again */
    if (c->finish_when_released || http_conn_should_close(c->http)) {
        c->finish_when_released = false;
        server_conn_finish(c);
    } else if (!c->job_running && !http_conn_waiting(c->http)) {
        server_conn_drive(c);
    }
}

void server_release_held(struct server *s)
{
    if (TAILQ_EMPTY(&s->held))
        return;
    uint64_t reached = audit_reached(s), seq = audit_seq(s->app->audit);
    /* Those held before this call, oldest first: one released here may be
     * held again (at the tail) for the next request it answers. */
    struct conn *last = TAILQ_LAST(&s->held, conn_list), *next;
    for (struct conn *c = TAILQ_FIRST(&s->held); c; c = next) {
        next = c == last ? NULL : TAILQ_NEXT(c, held_link);
        /* A failed write or sync releases too (audit_reached() is then the
         * written seq): a change it reports is already decided, reads may
         * go on, and the failure now refuses every further change. So does
         * a line that a failed write took back (seq went below it; it is
         * counted as lost) even if the trail has recovered since. */
        if (c->held && (c->hold_seq <= reached || c->hold_seq > seq))
            release_one(c);
    }
    /* What is still held waits for a sync that on_prepare() starts in
     * always mode (server_chores.c), or for its line's write. */
}
