/*
 * test_stats.c - counters and their text form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "stats.h"

#include <string.h>

static void test_format(void **state)
{
	struct cp_stats st;
	char buf[2048], small[16];
	size_t need;

	(void)state;
	memset(&st, 0, sizeof(st));
	cp_stats_inc(&st, api_calls);
	cp_stats_inc(&st, api_calls);
	cp_stats_add(&st, bytes_fetched, 1234567890123ULL);
	cp_stats_inc(&st, transfers_in_flight);
	cp_stats_dec(&st, transfers_in_flight);
	need = cp_stats_format(&st, buf, sizeof(buf));
	assert_int_equal(need, strlen(buf));
	assert_non_null(strstr(buf, "api_calls=2\n"));
	assert_non_null(strstr(buf, "bytes_fetched=1234567890123\n"));
	assert_non_null(strstr(buf, "transfers_in_flight=0\n"));
	assert_non_null(strstr(buf, "etag_changes=0\n"));
	cp_stats_inc(&st, fuse_readdirplus);
	cp_stats_add(&st, fuse_readdir_entries, 3);
	need = cp_stats_format(&st, buf, sizeof(buf));
	assert_non_null(strstr(buf, "fuse_readdirplus=1\n"));
	assert_non_null(strstr(buf, "fuse_readdir_entries=3\n"));
	assert_non_null(strstr(buf, "fuse_lookup=0\n"));
	assert_true(strncmp(buf, "api_calls=", 10) == 0);

	/* truncation: terminated, full length reported */
	memset(small, 'x', sizeof(small));
	assert_int_equal(cp_stats_format(&st, small, sizeof(small)), need);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(cp_stats_format(&st, NULL, 0), need);
	assert_int_equal(cp_stats_format(&st, small, 0), need);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
