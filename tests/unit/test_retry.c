/*
 * test_retry.c - the retry policy: attempts, deadline, jitter range,
 * Retry-After.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "retry.h"
#include "util.h"

static void test_attempts(void **state)
{
	struct cp_retry r;
	int i;

	(void)state;
	cp_retry_init(&r, 4, 1e9);
	for (i = 0; i < 3; i++)
		assert_true(cp_retry_next(&r, -1, 0) >= 0);
	assert_true(cp_retry_next(&r, -1, 0) < 0);
	assert_true(cp_retry_next(&r, -1, 0) < 0);

	cp_retry_init(&r, 1, 1e9);
	assert_true(cp_retry_next(&r, -1, 0) < 0);
	cp_retry_init(&r, 0, 1e9); /* treated as 1 */
	assert_true(cp_retry_next(&r, -1, 0) < 0);
}

static void test_jitter_range(void **state)
{
	struct cp_retry r;
	double ceiling, w, maxw;
	int n, k;

	(void)state;
	for (n = 1; n <= 10; n++) {
		ceiling = CP_RETRY_BASE;
		for (k = 1; k < n; k++)
			ceiling *= 2;
		if (ceiling > CP_RETRY_CAP)
			ceiling = CP_RETRY_CAP;
		maxw = 0;
		for (k = 0; k < 200; k++) {
			int j;

			cp_retry_init(&r, 100, 1e9);
			for (j = 1; j < n; j++)
				cp_retry_next(&r, -1, 0);
			w = cp_retry_next(&r, -1, 0);
			assert_true(w >= 0 && w <= ceiling);
			if (w > maxw)
				maxw = w;
		}
		/* full jitter actually uses the range */
		assert_true(maxw > ceiling / 2);
	}
}

static void test_deadline(void **state)
{
	struct cp_retry r;
	int i, refused = 0;

	(void)state;
	cp_retry_init(&r, 100, 10.0);
	assert_true(cp_retry_next(&r, 5, 0) == 5);
	assert_true(cp_retry_next(&r, 5, 4.9) == 5); /* ends at 9.9 */
	assert_true(cp_retry_next(&r, 5, 5.1) < 0);  /* would end at 10.1 */
	cp_retry_init(&r, 100, 10.0);
	assert_true(cp_retry_next(&r, -1, 10.0) < 0); /* already late */
	cp_retry_init(&r, 100, 10.0);
	assert_true(cp_retry_next(&r, 20, 0) < 0); /* Retry-After too long */
	/* jittered waits never cross the deadline: one that would is
	 * shortened to half the time left, until too little is left */
	for (i = 0; i < 1000; i++) {
		double w;

		cp_retry_init(&r, 100, 1.0);
		r.attempts = 6; /* ceiling 8 s: most draws overshoot */
		w = cp_retry_next(&r, -1, 0);
		assert_true(w >= 0 && w < 1.0);
		if (w == 0.5)
			refused++; /* counts the shortened ones */
	}
	assert_true(refused > 0 && refused < 1000);
	for (i = 0; i < 1000; i++) {
		double w;

		/* under 0.1 s left: a wait that fits, or give up */
		cp_retry_init(&r, 100, 10.0);
		r.attempts = 6;
		w = cp_retry_next(&r, -1, 9.95);
		assert_true(w < 0 || w < 0.05);
	}
}

static void test_retry_after_replaces_jitter(void **state)
{
	struct cp_retry r;

	(void)state;
	cp_retry_init(&r, 10, 1e9);
	assert_true(cp_retry_next(&r, 42, 0) == 42);
	assert_true(cp_retry_next(&r, 0, 0) == 0);
	/* longer than the backoff cap is still honoured */
	assert_true(cp_retry_next(&r, 100, 0) == 100);
}

static void test_transient(void **state)
{
	static const long yes[] = { 408, 429, 500, 502, 503, 504 };
	static const long no[] = { 200, 206, 301, 400, 401, 403,
				   404, 412, 416, 501, 505 };
	size_t i;

	(void)state;
	for (i = 0; i < CP_ARRAY_SIZE(yes); i++)
		assert_true(cp_retry_status_transient(yes[i]));
	for (i = 0; i < CP_ARRAY_SIZE(no); i++)
		assert_false(cp_retry_status_transient(no[i]));
}

static void test_random(void **state)
{
	double sum = 0, v;
	int i;

	(void)state;
	for (i = 0; i < 10000; i++) {
		v = cp_random();
		assert_true(v >= 0 && v < 1);
		sum += v;
	}
	assert_true(sum / 10000 > 0.45 && sum / 10000 < 0.55);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attempts),
		cmocka_unit_test(test_jitter_range),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_retry_after_replaces_jitter),
		cmocka_unit_test(test_transient),
		cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
