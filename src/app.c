/*
 * app.c - assembles what handlers use (store, key ring, audit) from the
 * configuration, at start-up, before the network is touched.
 */
#include "app.h"
#include "audit.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "ratelimit.h"
#include "sandbox.h"
#include "store.h"
#include "utc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A rate of 0 leaves that limiter NULL: explicitly off, never by accident. */
static int open_limits(struct app *app, const struct config *cfg, char *err, size_t errlen)
{
    if (!cfg->rate_limits_on) {
        log_warn("RATE LIMITS ARE OFF (NOTES_RATE_LIMITS=off): for benchmarks and tests only");
        return 0;
    }
    size_t n = cfg->rate_table_size;
    if (cfg->rate_ip_per_s)
        app->rl_ip = ratelimit_new(n, cfg->rate_ip_per_s, cfg->rate_ip_burst);
    if (cfg->rate_auth_per_min) {
        app->rl_auth_ip = ratelimit_new(n, cfg->rate_auth_per_min / 60.0, cfg->rate_auth_burst);
        app->rl_auth_name = ratelimit_new(n, cfg->rate_auth_per_min / 60.0, cfg->rate_auth_burst);
    }
    if (cfg->rate_writes_per_s)
        app->rl_writes = ratelimit_new(n, cfg->rate_writes_per_s, cfg->rate_writes_burst);
    if (cfg->rate_exports_per_min)
        app->rl_exports = ratelimit_new(n, cfg->rate_exports_per_min / 60.0, cfg->rate_exports_burst);
    app->throttle = throttle_new(n);
    if ((cfg->rate_ip_per_s && !app->rl_ip) || (cfg->rate_auth_per_min && (!app->rl_auth_ip || !app->rl_auth_name)) ||
        (cfg->rate_writes_per_s && !app->rl_writes) || (cfg->rate_exports_per_min && !app->rl_exports) ||
        !app->throttle) {
        snprintf(err, errlen, "out of memory for the rate-limit tables");
        return ERR_NOMEM;
    }
    return 0;
}

/* After each commit of the serving connection: how big its WAL is now. */
static void note_wal(void *arg, int log_frames)
{
    ((struct app *)arg)->wal_frames = log_frames;
}

int app_open(struct app *app, const struct config *cfg, char *err, size_t errlen)
{
    app->cfg = cfg;
    app->argon2 = (struct crypto_argon2){ cfg->argon2_m_kib, cfg->argon2_t, cfg->argon2_p };
    /* A file-size limit (RLIMIT_FSIZE) must fail the write with EFBIG, so
     * the audit trail refuses changes, instead of killing the process. */
    if (signal(SIGXFSZ, SIG_IGN) == SIG_ERR) {
        snprintf(err, errlen, "cannot ignore SIGXFSZ");
        return ERR_INTERNAL;
    }
    int rc = crypto_new(&app->crypto, cfg, err, errlen);
    if (rc == 0)
        rc = audit_open(&app->audit, cfg, app->crypto, err, errlen);
    if (rc == 0)
        rc = store_open(&app->store, cfg->db_path, err, errlen);
    /* The serving connection never checkpoints itself: checkpoints fsync,
     * and app_checkpoint_job runs them on the thread pool instead, told by
     * each commit how far the WAL has grown. */
    if (rc == 0)
        rc = store_set_autocheckpoint(app->store, false);
    if (rc == 0) {
        store_on_commit(app->store, note_wal, app);
        app->last_periodic_ms = utc_monotonic_ms();
        rc = open_limits(app, cfg, err, errlen);
    }
    if (rc) {
        app_close(app);
        return rc;
    }
    return 0;
}

void app_close(struct app *app)
{
    ratelimit_free(app->rl_ip);
    ratelimit_free(app->rl_auth_ip);
    ratelimit_free(app->rl_auth_name);
    ratelimit_free(app->rl_writes);
    ratelimit_free(app->rl_exports);
    throttle_free(app->throttle);
    app->rl_ip = app->rl_auth_ip = app->rl_auth_name = app->rl_writes = app->rl_exports = NULL;
    app->throttle = NULL;
    store_close(app->store);
    audit_close(app->audit);   /* before the keys it signs with */
    crypto_free(app->crypto);
    app->audit = NULL;
    app->store = NULL;
    app->crypto = NULL;
}

struct checkpoint_job {
    struct http_job base;
    struct app *app;
    const char *db_path;
    bool purge;                /* the periodic run also purges sessions */
    bool scrub;                /* truncate: notes changed or deleted */
    uint64_t changes;          /* app->wal_changes when the job was made */
    int64_t now, idle_cutoff;
    int rc;
};

static void checkpoint_work(struct http_job *base)
{
    struct checkpoint_job *j = (struct checkpoint_job *)base;
    char err[256];
    struct store *own = NULL;
    j->rc = store_open(&own, j->db_path, err, sizeof(err));
    /* Expired and idle sessions go first, so their rows leave with the
     * checkpoint rather than waiting for their token to be presented. */
    if (j->rc == 0 && j->purge)
        j->rc = store_session_purge(own, j->now, j->idle_cutoff);
    /* PASSIVE: a TRUNCATE would hold the writer lock through its fsync,
     * and the event loop's next write would wait that long. Only a log
     * grown past APP_WAL_RESTART_FRAMES (writes that never paused long
     * enough for PASSIVE to catch up) is started over, at the price of that
     * next write waiting for the frames added since and one fsync. */
    int frames = 0;
    if (j->rc == 0 && j->scrub)
        j->rc = store_checkpoint_brief(own);
    else if (j->rc == 0)
        j->rc = store_checkpoint_passive(own, &frames);
    if (j->rc == 0 && frames >= APP_WAL_RESTART_FRAMES)
        j->rc = store_checkpoint_restart(own);
    store_close(own);
}

static void checkpoint_done(struct http_job *base, struct http_response *res)
{
    (void)res;
    struct checkpoint_job *j = (struct checkpoint_job *)base;
    struct app *app = j->app;
    if (j->rc)
        log_warn("WAL checkpoint failed (%s); will retry", err_name(j->rc));
    app->checkpoint_failed = j->rc != 0;
    if (j->rc == 0 && j->scrub) {
        app->wal_scrubbed = j->changes;
        log_debug("WAL truncated: no old note values left in it (changes up to %llu)",
                  (unsigned long long)j->changes);
    }
    free(j);
}

void app_wal_changed(struct app *app)
{
    app->wal_changes++;
}

/* Every APP_CHECKPOINT_MS, or sooner when the WAL has grown: a busy writer
 * must not have to wait for the clock while its log fills the disk. */
struct http_job *app_checkpoint_job(void *arg)
{
    struct app *app = arg;
    uint64_t now = utc_monotonic_ms();
    bool periodic = now - app->last_periodic_ms >= APP_CHECKPOINT_MS;
    /* After a failed run (a reader that stays, a full disk) only the
     * periodic one tries again, not one every tick, until one succeeds. */
    bool grown = app->wal_frames >= APP_WAL_CHECKPOINT_FRAMES && !app->checkpoint_failed;
    /* Old values of changed and deleted notes leave the -wal file by a
     * truncation, at the next tick (after a failure: at the periodic run). */
    bool scrub = app->wal_changes != app->wal_scrubbed;
    if (!periodic && !grown && !(scrub && !app->checkpoint_failed))
        return NULL;
    struct checkpoint_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    if (periodic)
        app->last_periodic_ms = now;
    app->wal_frames = 0;       /* the next commit says how far it got */
    j->base.work = checkpoint_work;
    j->base.done = checkpoint_done;
    j->app = app;
    j->purge = periodic;
    j->scrub = scrub;
    j->changes = app->wal_changes;
    j->db_path = app->cfg->db_path;
    j->now = (int64_t)time(NULL);
    j->idle_cutoff = j->now - (int64_t)app->cfg->token_idle_s;
    return &j->base;
}

/* ---- start, stop and retention: the server's hooks -------------------------- */

void app_log_anchor(struct app *app, const char *when)
{
    struct audit_anchor an;
    char text[AUDIT_ANCHOR_TEXT_MAX];
    if (!audit_anchor_now(app->audit, &an))
        return;
    audit_anchor_format(&an, text);
    /* A hash of an audit line: no secret, name or content. Shipped off the
     * machine with the log, it is what `audit verify --anchor` takes. */
    log_info("audit anchor %s (%s; notesd audit verify --anchor finds lines cut after it)", text, when);
}

static void record_system(struct app *app, const char *event, const char *detail)
{
    struct audit_event ev = { .event = event, .role = "system", .result = AUDIT_SUCCESS, .detail = detail };
    audit_record(app->audit, &ev);
}

int app_started(void *arg)
{
    struct app *app = arg;
    /* First the sandbox (privilege drop, Landlock, seccomp): everything
     * after it, the first audit line included, runs confined. */
    if (sandbox_started(app->cfg) != 0)
        return ERR_CONFIG;
    /* The digest names the configuration that ran (every non-secret
     * setting), so an auditor can tell two runs' settings apart. */
    uint8_t d[CRYPTO_SHA256_LEN];
    char detail[32] = "config:";
    const char *text = app->cfg->canonical ? app->cfg->canonical : "";
    if (crypto_sha256(text, strlen(text), d) != 0)
        return ERR_CRYPTO;
    for (size_t i = 0; i < 12; i++)
        snprintf(detail + 7 + 2 * i, 3, "%02x", d[i]);
    record_system(app, "server.start", detail);
    audit_flush(app->audit);
    if (!audit_healthy(app->audit)) {
        log_error("cannot write the audit trail: refusing to serve");
        return ERR_IO;
    }
    audit_sync(app->audit);        /* before serving: blocking is fine, and the anchor is on disk */
    app_log_anchor(app, "start");
    return 0;
}

void app_stopping(void *arg)
{
    struct app *app = arg;
    atomic_store(&app->pw_stop, true);   /* the loop waits for the pool's jobs */
    record_system(app, "server.stop", NULL);
}

struct http_job *app_retention_chore(void *arg)
{
    struct app *app = arg;
    audit_enforce_retention(app->audit, time(NULL));
    app_log_anchor(app, "hourly");
    return NULL;
}
