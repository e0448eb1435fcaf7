/*
 * app.h - what handlers may use: the parts of the running server below the
 * router. One instance per process, created by main.c and passed down,
 * never global. Everything here is used on the event-loop thread only,
 * except what a field says otherwise.
 */
#ifndef NOTESD_APP_H
#define NOTESD_APP_H

#include "config.h"
#include "crypto.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct store;
struct audit;
struct ratelimit;
struct throttle;

#define APP_PW_SETS 8               /* stored argon2 settings timed after start-up */

struct app {
    const struct config *cfg;
    struct store *store;
    struct crypto *crypto;
    struct audit *audit;
    struct crypto_argon2 argon2;   /* from cfg, for password jobs */
    /* How long a password check under `argon2` takes here (a running mean,
     * ms; 0 until measured). Written and read by pool threads. */
    _Atomic uint64_t check_ms;
    /* A failed login takes at least check_ms x fail_pct / 100: above 100
     * when stored hashes were made under other settings and cost more to
     * check (app_passwords.c). Set on the loop, read by pool threads. */
    _Atomic uint32_t fail_pct;
    /* Those other settings, costliest first (by m x t), and whether their
     * checks have been timed (loop thread). */
    struct crypto_argon2 pw_sets[APP_PW_SETS];
    size_t n_pw_sets;
    bool pw_measured;
    _Atomic bool pw_stop;          /* the timing job stops between checks */
    /* Abuse limits (NULL: that limit is off). */
    struct ratelimit *rl_ip;       /* every request, per client address */
    struct ratelimit *rl_auth_ip;  /* login and register, per client address */
    struct ratelimit *rl_auth_name;/* login and register, per username */
    struct ratelimit *rl_writes;   /* note writes, per user */
    struct ratelimit *rl_exports;  /* exports, per user and per client address */
    struct throttle *throttle;     /* consecutive login failures, per account */
    /* The WAL as the serving connection's last commit left it, and when the
     * last periodic checkpoint job was made (utc_monotonic_ms; loop thread). */
    int wal_frames;
    uint64_t last_periodic_ms;
    bool checkpoint_failed;        /* the last run failed: only the periodic one retries */
    /* Notes changed or deleted (counted) and how many of those changes a
     * truncated WAL has caught up with: until then the -wal file may hold
     * their old sealed values (loop thread). */
    uint64_t wal_changes, wal_scrubbed;
};

/**
 * Open what the handlers need: the key ring, the audit trail
 * (NOTES_AUDIT_DIR) and the store (NOTES_DB).
 * 0, or ERR_CONFIG / ERR_IO with one line in `err`. Blocking (start-up).
 */
int app_open(struct app *app, const struct config *cfg, char *err, size_t errlen);
/** Before serving (app_passwords.c): read which other argon2 settings the
 *  stored hashes use and estimate fail_pct from them (no argon2 here). 0 or
 *  an ERR_* code with one line in `err`. */
int app_passwords_open(struct app *app, char *err, size_t errlen);
/** A chore: once, a pool job that times a check under the current and
 *  each stored setting and sets check_ms and fail_pct from what it
 *  measured (an untimed setting keeps its estimate). NULL when there is
 *  nothing (more) to time. */
struct http_job *app_passwords_chore(void *arg);
/** The WAL is checkpointed off the loop every APP_CHECKPOINT_MS, and
 *  sooner once it holds APP_WAL_CHECKPOINT_FRAMES (looked at every
 *  APP_CHECKPOINT_TICK_MS); a checkpoint that finds at least
 *  APP_WAL_RESTART_FRAMES in it has the log start over (store.h). */
#define APP_CHECKPOINT_MS 10000
#define APP_CHECKPOINT_TICK_MS 250
#define APP_WAL_CHECKPOINT_FRAMES 1000      /* ~4 MiB of 4 KiB pages, SQLite's own default */
#define APP_WAL_RESTART_FRAMES 4096         /* ~16 MiB */

struct http_job;
/** A job that checkpoints the WAL on its own connection (thread pool), so
 *  the loop's connection never fsyncs. Its done() takes a NULL response. */
struct http_job *app_checkpoint_job(void *app);
/** A note was changed or deleted: the next checkpoint job truncates the WAL,
 *  so its old value does not stay in the -wal file (loop thread). */
void app_wal_changed(struct app *app);

/** The server's `started` hook: enter the sandbox (sandbox.h), then record
 *  server.start (with a digest of the non-secret settings); non-zero when
 *  either fails, so the server never serves unconfined or unaudited. */
int app_started(void *arg);
/** The server's `stopping` hook: record server.stop. */
void app_stopping(void *arg);
/** A chore for the hourly retention timer (AUDIT_RETENTION_MS): prunes on
 *  the loop thread and returns no pool job. */
struct http_job *app_retention_chore(void *arg);
/** Log the trail's newest line on disk as an anchor ("audit anchor
 *  SEQ:SHA256", info; audit_anchor_now()): at start, hourly and at the end
 *  of `serve`, so a log shipped elsewhere holds what `notesd audit verify
 *  --anchor` takes. Loop thread (or after the loop). */
void app_log_anchor(struct app *app, const char *when);

/** Close the audit trail and the store, and destroy the keys. */
void app_close(struct app *app);

#endif
