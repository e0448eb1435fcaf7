/* Unit tests for authz.c: the role → permission table, deny by default. */
#include <criterion/criterion.h>

#include "authz.h"

static const enum perm user_perms[] = {
    PERM_SESSION, PERM_ME_READ, PERM_ME_EXPORT, PERM_ME_DELETE, PERM_NOTE_CREATE,
    PERM_NOTE_READ_OWN, PERM_NOTE_UPDATE_OWN, PERM_NOTE_DELETE_OWN,
};

static bool in(const enum perm *list, size_t n, enum perm p)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == p)
            return true;
    return false;
}

Test(authz, user_has_exactly_the_user_permissions)
{
    size_t n = sizeof(user_perms) / sizeof(user_perms[0]);
    for (int p = PERM_SESSION; p < PERM_COUNT; p++)
        cr_assert_eq(authz_allows(ROLE_USER, (enum perm)p), in(user_perms, n, (enum perm)p),
                     "user and %s", authz_perm_name((enum perm)p));
}

Test(authz, admin_has_every_user_permission_and_reads_any_note)
{
    size_t n = sizeof(user_perms) / sizeof(user_perms[0]);
    for (size_t i = 0; i < n; i++)
        cr_assert(authz_allows(ROLE_ADMIN, user_perms[i]), "admin and %s", authz_perm_name(user_perms[i]));
    cr_assert(authz_allows(ROLE_ADMIN, PERM_NOTE_READ_ANY));
    cr_assert_not(authz_allows(ROLE_USER, PERM_NOTE_READ_ANY));
}

Test(authz, anonymous_gets_only_public)
{
    cr_assert(authz_allows(ROLE_NONE, PERM_PUBLIC));
    for (int p = PERM_SESSION; p < PERM_COUNT; p++)
        cr_assert_not(authz_allows(ROLE_NONE, (enum perm)p), "anonymous and %s", authz_perm_name((enum perm)p));
}

Test(authz, undeclared_and_unknown_permissions_are_denied_to_everyone)
{
    enum role roles[] = { ROLE_NONE, ROLE_USER, ROLE_ADMIN, (enum role)99 };
    for (size_t i = 0; i < 4; i++) {
        cr_assert_not(authz_allows(roles[i], PERM_UNDECLARED));
        cr_assert_not(authz_allows(roles[i], PERM_COUNT));
        cr_assert_not(authz_allows(roles[i], (enum perm)-1));
    }
    cr_assert_not(authz_allows((enum role)99, PERM_NOTE_READ_OWN));
}

Test(authz, role_names_round_trip_and_unknown_names_fail_closed)
{
    cr_assert_eq(authz_role_parse("user"), ROLE_USER);
    cr_assert_eq(authz_role_parse("admin"), ROLE_ADMIN);
    cr_assert_eq(authz_role_parse("Admin"), ROLE_NONE);
    cr_assert_eq(authz_role_parse("admin "), ROLE_NONE);
    cr_assert_eq(authz_role_parse(""), ROLE_NONE);
    cr_assert_eq(authz_role_parse(NULL), ROLE_NONE);
    cr_assert_str_eq(authz_role_name(ROLE_ADMIN), "admin");
    cr_assert_str_eq(authz_role_name(ROLE_NONE), "anonymous");
}

/* ---- the route table: every row must declare a permission ------------------ */

#include <string.h>
#include "err.h"
#include "router.h"

static void noop_handler(struct route_ctx *ctx)
{
    (void)ctx;
}

Test(router, the_shipped_table_declares_a_permission_on_every_row)
{
    char err[128] = "";
    cr_assert_eq(router_check_table(err, sizeof(err)), 0, "%s", err);
}

Test(router, a_row_without_a_permission_refuses_to_start)
{
    const struct route table[] = {
        { HTTP_M_GET, "/ok", noop_handler, PERM_PUBLIC, false, { NULL }, LIMIT_NONE },
        { HTTP_M_POST, "/forgotten", noop_handler, PERM_UNDECLARED, true, { NULL }, LIMIT_NONE },
    };
    char err[128] = "";
    cr_assert_eq(router_check_routes(table, 2, err, sizeof(err)), ERR_CONFIG);
    cr_assert(strstr(err, "POST /forgotten"), "%s", err);
    cr_assert_eq(router_check_routes(table, 1, err, sizeof(err)), 0);
}

Test(router, a_row_with_an_unknown_permission_or_no_handler_is_refused)
{
    const struct route bad_perm[] = { { HTTP_M_GET, "/x", noop_handler, PERM_COUNT, false, { NULL }, LIMIT_NONE } };
    const struct route no_handler[] = { { HTTP_M_GET, "/x", NULL, PERM_PUBLIC, false, { NULL }, LIMIT_NONE } };
    char err[128];
    cr_assert_eq(router_check_routes(bad_perm, 1, err, sizeof(err)), ERR_CONFIG);
    cr_assert_eq(router_check_routes(no_handler, 1, err, sizeof(err)), ERR_CONFIG);
}
