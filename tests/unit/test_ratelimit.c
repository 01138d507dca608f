/*
 * test_ratelimit.c - the sliding window: N calls per window, then wait;
 * call order kept; Retry-After pauses everyone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ratelimit.h"

#include <math.h>
#include <pthread.h>

#define EPS 1e-9

static void test_window(void **state)
{
	struct cp_ratelimit rl;
	double w;
	int i;

	(void)state;
	assert_int_equal(cp_ratelimit_init(&rl, 100, 60.5), 0);
	for (i = 0; i < 100; i++)
		assert_true(cp_ratelimit_reserve(&rl, 1000.0) < EPS);
	/* the 101st waits a whole window after the first */
	w = cp_ratelimit_reserve(&rl, 1000.0);
	assert_true(fabs(w - 60.5) < EPS);
	/* and the 102nd queues behind it */
	w = cp_ratelimit_reserve(&rl, 1000.0);
	assert_true(fabs(w - 60.5) < EPS);
	/* later, slots free up as the window slides */
	w = cp_ratelimit_reserve(&rl, 1070.0);
	assert_true(w < EPS);
	cp_ratelimit_destroy(&rl);
}

static void test_spread(void **state)
{
	struct cp_ratelimit rl;
	double now = 0, w;
	int i, started = 0;

	(void)state;
	/* 3 per 10 s: calls at t=0,1,2 go; t=3 waits until 10. */
	assert_int_equal(cp_ratelimit_init(&rl, 3, 10), 0);
	for (i = 0; i < 3; i++) {
		w = cp_ratelimit_reserve(&rl, now + i);
		assert_true(w < EPS);
		started++;
	}
	w = cp_ratelimit_reserve(&rl, 3);
	assert_true(fabs(w - 7) < EPS);
	w = cp_ratelimit_reserve(&rl, 3);
	assert_true(fabs(w - 8) < EPS);
	cp_ratelimit_destroy(&rl);
	(void)started;
}

static void test_pause(void **state)
{
	struct cp_ratelimit rl;
	double w;

	(void)state;
	assert_int_equal(cp_ratelimit_init(&rl, 10, 60), 0);
	assert_true(cp_ratelimit_reserve(&rl, 0) < EPS);
	cp_ratelimit_pause(&rl, 30);
	w = cp_ratelimit_reserve(&rl, 5);
	assert_true(fabs(w - 25) < EPS);
	/* an earlier pause does not shorten a later one */
	cp_ratelimit_pause(&rl, 10);
	w = cp_ratelimit_reserve(&rl, 5);
	assert_true(fabs(w - 25) < EPS);
	/* after the pause: no wait */
	w = cp_ratelimit_reserve(&rl, 31);
	assert_true(w < EPS);
	cp_ratelimit_destroy(&rl);
}

static void test_limit_one(void **state)
{
	struct cp_ratelimit rl;

	(void)state;
	assert_int_equal(cp_ratelimit_init(&rl, 1, 2), 0);
	assert_true(cp_ratelimit_reserve(&rl, 0) < EPS);
	assert_true(fabs(cp_ratelimit_reserve(&rl, 0) - 2) < EPS);
	assert_true(fabs(cp_ratelimit_reserve(&rl, 0) - 4) < EPS);
	cp_ratelimit_destroy(&rl);
}

struct worker {
	struct cp_ratelimit *rl;
	double waits[50];
};

static void *hammer(void *arg)
{
	struct worker *w = arg;
	int i;

	for (i = 0; i < 50; i++)
		w->waits[i] = cp_ratelimit_reserve(w->rl, 0);
	return NULL;
}

/* 8 threads x 50 calls, 100 per window: exactly 100 start in each. */
static void test_threads(void **state)
{
	struct cp_ratelimit rl;
	struct worker w[8];
	pthread_t th[8];
	int counts[8] = { 0 };
	int i, j;

	(void)state;
	assert_int_equal(cp_ratelimit_init(&rl, 100, 60), 0);
	for (i = 0; i < 8; i++) {
		w[i].rl = &rl;
		pthread_create(&th[i], NULL, hammer, &w[i]);
	}
	for (i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 8; i++)
		for (j = 0; j < 50; j++) {
			int k = (int)floor(w[i].waits[j] / 60 + EPS);

			assert_true(k >= 0 && k < 8);
			counts[k]++;
		}
	for (i = 0; i < 4; i++)
		assert_int_equal(counts[i], 100);
	cp_ratelimit_destroy(&rl);
}

/* The low lane: takes only free slots, keeps some for the reserved
 * lane, and never jumps ahead of a reserved caller still waiting. */
static void test_low_lane(void **state)
{
	struct cp_ratelimit rl;
	double w;
	int i;

	(void)state;
	assert_int_equal(cp_ratelimit_init(&rl, 10, 60), 0);
	/* 10 slots, 3 kept free: the low lane gets 7 */
	for (i = 0; i < 7; i++)
		assert_true(cp_ratelimit_try_low(&rl, 100.0, 3) < EPS);
	w = cp_ratelimit_try_low(&rl, 100.0, 3);
	assert_true(fabs(w - 60) < EPS); /* until the first one leaves */
	/* the reserved lane still has its 3 at once */
	for (i = 0; i < 3; i++)
		assert_true(cp_ratelimit_reserve(&rl, 100.0) < EPS);
	/* a reserved caller now waits for t=160: the low lane waits until
	 * it has started */
	assert_true(fabs(cp_ratelimit_reserve(&rl, 101.0) - 59) < EPS);
	w = cp_ratelimit_try_low(&rl, 130.0, 0);
	assert_true(fabs(w - 30) < EPS);
	cp_ratelimit_destroy(&rl);

	/* a pause holds the low lane too */
	assert_int_equal(cp_ratelimit_init(&rl, 10, 60), 0);
	cp_ratelimit_pause(&rl, 50.0);
	assert_true(fabs(cp_ratelimit_try_low(&rl, 40.0, 3) - 10) < EPS);
	assert_true(cp_ratelimit_try_low(&rl, 50.0, 3) < EPS);
	cp_ratelimit_destroy(&rl);

	/* limit 1: the single slot is shared, keep_free clamps to 0 */
	assert_int_equal(cp_ratelimit_init(&rl, 1, 60), 0);
	assert_true(cp_ratelimit_try_low(&rl, 0.0, 5) < EPS);
	assert_true(fabs(cp_ratelimit_try_low(&rl, 1.0, 5) - 59) < EPS);
	cp_ratelimit_destroy(&rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_spread),
		cmocka_unit_test(test_pause),
		cmocka_unit_test(test_limit_one),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_low_lane),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
