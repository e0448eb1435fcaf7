/*
 * audit.h - security events: who did what, to which resource, with what
 * result. One call per event, made at the layer that decides.
 *
 * For now a stub that records nothing; the audit-trail issue gives it the
 * tamper-evident, rotating log. Callers never pass secrets, tokens,
 * passwords, usernames or note content: only ids and fixed codes.
 */
#ifndef NOTESD_AUDIT_H
#define NOTESD_AUDIT_H

#include <stdint.h>

enum audit_result { AUDIT_SUCCESS, AUDIT_DENY, AUDIT_ERROR };

struct audit_event {
    const char *event;        /* e.g. "note.create" */
    int64_t actor_id;         /* user id, 0 when anonymous */
    const char *role;         /* "user", "admin", "anonymous", "cli" */
    const char *request_id;   /* NULL outside a request */
    const char *resource_type;/* e.g. "note"; NULL when none */
    int64_t resource_id;
    enum audit_result result;
    int status;               /* HTTP status, 0 outside a request */
    const char *reason;       /* short machine code on deny/error */
};

struct audit;

/** Record one event. A no-op stub until the audit log exists. */
void audit_record(struct audit *a, const struct audit_event *ev);

#endif
