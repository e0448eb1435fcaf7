/* Unit tests for buf.c: bounded growth, overflow refusal, consume. */
#include <criterion/criterion.h>

#include "buf.h"
#include "err.h"

Test(buf, append_within_max_succeeds)
{
    struct buf b;
    buf_init(&b, 8);
    cr_assert_eq(buf_append(&b, "12345678", 8), 0);
    cr_assert_eq(b.len, 8);
    cr_assert_eq(memcmp(b.data, "12345678", 8), 0);
    buf_cleanup(&b);
}

Test(buf, append_past_max_is_refused_and_leaves_contents)
{
    struct buf b;
    buf_init(&b, 8);
    cr_assert_eq(buf_append(&b, "1234", 4), 0);
    cr_assert_eq(buf_append(&b, "56789", 5), ERR_LIMIT);
    cr_assert_eq(b.len, 4);
    cr_assert_leq(b.cap, 8);
    buf_cleanup(&b);
}

Test(buf, reserve_rejects_size_overflow)
{
    struct buf b;
    buf_init(&b, SIZE_MAX);
    cr_assert_eq(buf_append(&b, "x", 1), 0);
    cr_assert_eq(buf_reserve(&b, SIZE_MAX), ERR_LIMIT);
    buf_cleanup(&b);
}

Test(buf, consume_keeps_the_rest_in_order)
{
    struct buf b;
    buf_init(&b, 64);
    buf_append_str(&b, "hello world");
    buf_consume(&b, 6);
    cr_assert_eq(b.len, 5);
    cr_assert_eq(memcmp(b.data, "world", 5), 0);
    buf_consume(&b, 99);
    cr_assert_eq(b.len, 0);
    buf_cleanup(&b);
}

Test(buf, append_u64_writes_decimal)
{
    struct buf b;
    buf_init(&b, 64);
    buf_append_u64(&b, 0);
    buf_append_str(&b, " ");
    buf_append_u64(&b, UINT64_MAX);
    cr_assert_eq(b.len, 22);
    cr_assert_eq(memcmp(b.data, "0 18446744073709551615", 22), 0);
    buf_cleanup(&b);
}

Test(buf, slice_nocase_compare)
{
    cr_assert(slice_eq_nocase(SLICE_LIT("Content-Length"), SLICE_LIT("content-length")));
    cr_assert_not(slice_eq_nocase(SLICE_LIT("Host"), SLICE_LIT("Hosts")));
    cr_assert_not(slice_eq(SLICE_LIT("a"), SLICE_LIT("A")));
}
