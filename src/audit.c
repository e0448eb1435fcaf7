/*
 * audit.c - the audit trail. A stub for now: events are accepted and
 * dropped, so every call site is already in place for the real log.
 */
#include "audit.h"

void audit_record(struct audit *a, const struct audit_event *ev)
{
    (void)a;
    (void)ev;
}
