/*
 * authz.h - roles, permissions, and the one table that maps one to the other.
 *
 * Every route declares one permission; router.c asks authz_allows() before
 * any handler runs. Anything not in the table is denied (deny by default).
 * Pure and constant: safe on any thread.
 */
#ifndef NOTESD_AUTHZ_H
#define NOTESD_AUTHZ_H

#include <stdbool.h>

enum role {
    ROLE_NONE = 0,          /* not authenticated */
    ROLE_USER,
    ROLE_ADMIN,
};

enum perm {
    PERM_UNDECLARED = 0,    /* never valid: a route with it stops start-up */
    PERM_PUBLIC,            /* anyone, with or without a token */
    PERM_SESSION,           /* any authenticated user: logout, password change */
    PERM_ME_READ,
    PERM_ME_EXPORT,
    PERM_ME_DELETE,
    PERM_NOTE_CREATE,
    PERM_NOTE_READ_OWN,
    PERM_NOTE_UPDATE_OWN,
    PERM_NOTE_DELETE_OWN,
    PERM_NOTE_READ_ANY,     /* administrators: every user's notes */
    PERM_COUNT,
};

/** May `role` do what `perm` names? PERM_PUBLIC is allowed to everyone,
 *  PERM_UNDECLARED to no one. */
bool authz_allows(enum role role, enum perm perm);
/** "user" / "admin" → role; ROLE_NONE for anything else. */
enum role authz_role_parse(const char *name);
/** role → "user" / "admin" / "anonymous". */
const char *authz_role_name(enum role role);
/** Stable machine name of a permission, e.g. "note:read:own". */
const char *authz_perm_name(enum perm perm);

#endif
