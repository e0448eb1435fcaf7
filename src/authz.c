/*
 * authz.c - the role → permission table. Deny by default: a role gets a
 * permission only when a row below grants it.
 */
#include "authz.h"

#include <string.h>

struct grant {
    enum role role;
    enum perm perm;
};

static const struct grant grants[] = {
    { ROLE_USER, PERM_SESSION },
    { ROLE_USER, PERM_ME_READ },
    { ROLE_USER, PERM_ME_EXPORT },
    { ROLE_USER, PERM_ME_DELETE },
    { ROLE_USER, PERM_NOTE_CREATE },
    { ROLE_USER, PERM_NOTE_READ_OWN },
    { ROLE_USER, PERM_NOTE_UPDATE_OWN },
    { ROLE_USER, PERM_NOTE_DELETE_OWN },

    { ROLE_ADMIN, PERM_SESSION },
    { ROLE_ADMIN, PERM_ME_READ },
    { ROLE_ADMIN, PERM_ME_EXPORT },
    { ROLE_ADMIN, PERM_ME_DELETE },
    { ROLE_ADMIN, PERM_NOTE_CREATE },
    { ROLE_ADMIN, PERM_NOTE_READ_OWN },
    { ROLE_ADMIN, PERM_NOTE_UPDATE_OWN },
    { ROLE_ADMIN, PERM_NOTE_DELETE_OWN },
    { ROLE_ADMIN, PERM_NOTE_READ_ANY },
};

bool authz_allows(enum role role, enum perm perm)
{
    if (perm == PERM_PUBLIC)
        return true;
    for (size_t i = 0; i < sizeof(grants) / sizeof(grants[0]); i++)
        if (grants[i].role == role && grants[i].perm == perm)
            return true;
    return false;
}

enum role authz_role_parse(const char *name)
{
    if (name && strcmp(name, "user") == 0)
        return ROLE_USER;
    if (name && strcmp(name, "admin") == 0)
        return ROLE_ADMIN;
    return ROLE_NONE;
}

const char *authz_role_name(enum role role)
{
    switch (role) {
    case ROLE_USER: return "user";
    case ROLE_ADMIN: return "admin";
    case ROLE_NONE: break;
    }
    return "anonymous";
}

const char *authz_perm_name(enum perm perm)
{
    static const char *const names[PERM_COUNT] = {
        [PERM_UNDECLARED] = "undeclared",
        [PERM_PUBLIC] = "public",
        [PERM_SESSION] = "session",
        [PERM_ME_READ] = "me:read",
        [PERM_ME_EXPORT] = "me:export",
        [PERM_ME_DELETE] = "me:delete",
        [PERM_NOTE_CREATE] = "note:create",
        [PERM_NOTE_READ_OWN] = "note:read:own",
        [PERM_NOTE_UPDATE_OWN] = "note:update:own",
        [PERM_NOTE_DELETE_OWN] = "note:delete:own",
        [PERM_NOTE_READ_ANY] = "note:read:any",
    };
    return perm >= 0 && perm < PERM_COUNT && names[perm] ? names[perm] : "unknown";
}
