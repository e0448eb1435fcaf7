/* Placeholder: replaced by the real tests of store.c. */
#include <criterion/criterion.h>
