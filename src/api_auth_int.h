/*
 * api_auth_int.h - what the authentication handlers (api_auth.c) and their
 * password jobs (api_auth_jobs.c) share: the job record and the steps a
 * handler or a done() takes with it. Event-loop thread only; the job's
 * work, static in api_auth_jobs.c, is the one part that runs on the pool.
 */
#ifndef NOTESD_API_AUTH_INT_H
#define NOTESD_API_AUTH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "api.h"
#include "crypto.h"
#include "ratelimit.h"
#include "validate.h"

struct app;

/** What a password job does, hence what its work hashes or verifies. */
enum job_kind { JOB_REGISTER, JOB_LOGIN, JOB_PASSWORD, JOB_DELETE_ME };

struct pw_job {
    struct http_job base;
    enum job_kind kind;
    struct app *app;
    char request_id[HTTP_ID_LEN + 1];
    uint8_t peer[16];                   /* client address, for the audit line */
    bool has_peer;
    int64_t user_id;
    enum role role;
    bool user_ok;                       /* the account exists and is enabled */
    uint8_t token_hash[CRYPTO_TOKEN_HASH_LEN];
    char username[VALIDATE_USERNAME_MAX + 1];
    char *pw;                           /* to verify (login, password change) or hash (register) */
    size_t pw_len;
    char *new_pw;                       /* password change: the new one */
    size_t new_len;
    char phc[CRYPTO_PHC_MAX];           /* stored hash to verify against */
    int64_t password_gen;               /* the account's, read with phc */
    const char *dummy_phc;              /* current settings, matches nothing (immutable) */
    uint8_t salt[CRYPTO_SALT_LEN];
    char new_phc[CRYPTO_PHC_MAX];       /* produced by work() */
    int verify_rc, hash_rc, delete_rc;
    int scrub_rc;                       /* the erasure's WAL truncation */
    bool rehash;
    uint8_t name_key[RATELIMIT_KEY_LEN];   /* login throttling key */
    bool throttled;                     /* let in by throttle_admit() on name_key, */
    uint64_t admitted_ms;               /* at this time (utc_monotonic_ms()) */
};

/* ---- a job's lifetime (api_auth_jobs.c) ---------------------------------- */

/** Wipe the passwords and the job, and free it. Not NULL. */
void api_auth_job_free(struct pw_job *j);
/** Record `event` for the job's request (who = the account when it is
 *  known and enabled, else anonymous; anonymous too for an auth.login that
 *  did not succeed). `reason` static or NULL. */
void api_auth_job_audit(struct pw_job *j, const char *event, int result, int status, const char *reason);
/** A job of `kind` for this request, with the caller, the request id, the
 *  peer and a fresh salt copied in; `done` runs on the loop. NULL when out
 *  of memory or the RNG fails (nothing written). The caller moves the
 *  passwords in and hands it over as ctx->res->job. */
struct pw_job *api_auth_job_new(struct route_ctx *ctx, enum job_kind kind,
                                void (*done)(struct http_job *, struct http_response *));
/** A job checking the caller's own password: the stored hash copied in,
 *  and a throttle key of its own for the account. NULL with *limited set
 *  when the 429 is written; NULL with *limited false on an internal
 *  failure (nothing written). */
struct pw_job *api_auth_job_for_caller(struct route_ctx *ctx, enum job_kind kind,
                                       void (*done)(struct http_job *, struct http_response *), bool *limited);
/** End, once, the attempt the throttle let in for this job (login or
 *  current password): `passed` when its check passed; a cancelled job
 *  gives its counts back. No-op for a job the throttle did not admit. */
void api_auth_throttle_settle(struct pw_job *j, bool passed);
/** The generic 500 in `res`, recorded as `event` error "internal". */
void api_auth_job_fail_internal(struct pw_job *j, struct http_response *res, const char *event);
/** A job whose work never ran is freed unanswered; one whose guard could
 *  not begin gets the 503 "store_busy" and is freed. true when the job was
 *  freed (done() returns at once); false otherwise. */
bool api_auth_job_refused(struct pw_job *j, struct http_response *res, const char *event);

/* ---- is the checked password still the account's (api_auth_jobs.c) ------- */

/** Inside the guard's write transaction: the account is enabled and still
 *  has the password the job checked (its password_gen; a rehash keeps it). */
bool api_auth_still_current(const struct pw_job *j);
/** api_auth_still_current(), and the session that asked for the job still
 *  exists. */
bool api_auth_caller_current(const struct pw_job *j);

#endif
