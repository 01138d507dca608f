/*
 * test_reader.c - the reader's prefetch planner (reader_prefetch.h):
 * sequential and random detection, the window ahead of a reader, its
 * top-up a whole transfer at a time, growth, cuts and the end of the
 * object.  Pure arithmetic: no mount, no threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cache.h"
#include "fetch.h"
#include "reader.h"
#include "reader_prefetch.h"

#define MIB ((int64_t)1 << 20)

/* One read; checks the planned range [from, to). */
static void read_expect(struct cp_prefetch *pf, int64_t size, int64_t off,
			int64_t len, uint64_t want_from, uint64_t want_to)
{
	uint64_t from = 12345, to = 12345;

	cp_prefetch_plan(pf, size, off, off + len, 128, &from, &to);
	if (from != want_from || to != want_to)
		fail_msg("read [%lld, %lld): planned [%llu, %llu), wanted "
			 "[%llu, %llu)",
			 (long long)off, (long long)(off + len),
			 (unsigned long long)from, (unsigned long long)to,
			 (unsigned long long)want_from,
			 (unsigned long long)want_to);
}

static void test_part_blocks(void **state)
{
	(void)state;
	assert_int_equal(cp_prefetch_part_blocks(1), 1);
	assert_int_equal(cp_prefetch_part_blocks(CP_WINDOW_MIN), 1);
	assert_int_equal(cp_prefetch_part_blocks(8), 2);
	assert_int_equal(cp_prefetch_part_blocks(16), 4);
	assert_int_equal(cp_prefetch_part_blocks(32), 8);
	assert_int_equal(cp_prefetch_part_blocks(CP_WINDOW_MAX),
			 CP_PART_BLOCKS);
	assert_true(CP_PART_BLOCKS <= CP_PART_MAX_BLOCKS);
}

static void test_sequential_window(void **state)
{
	struct cp_prefetch pf;
	int64_t size = 64 * MIB;

	(void)state;
	cp_prefetch_init(&pf);
	assert_int_equal(pf.window, CP_WINDOW_START);
	/* Cold start: the window of 8 blocks after the first. */
	read_expect(&pf, size, 0, 128 << 10, 1, 9);
	/* The rest of block 0: all of the window is asked for already. */
	read_expect(&pf, size, 128 << 10, MIB - (128 << 10), 9, 9);
	/* Block 1: one block short of the window, less than a part (2
	 * blocks for a window of 8): nothing yet. */
	read_expect(&pf, size, MIB, MIB, 9, 9);
	/* Block 2: two short, one whole part is topped up. */
	read_expect(&pf, size, 2 * MIB, MIB, 9, 11);
	assert_int_equal(pf.random, 0);
	assert_true(pf.next_off == 3 * MIB);
}

static void test_topped_up_a_whole_part_at_a_time(void **state)
{
	struct cp_prefetch pf;
	int64_t size = 256 * MIB, off;
	uint64_t from, to;

	(void)state;
	cp_prefetch_init(&pf);
	cp_prefetch_served(&pf, 1.0, 1, 128);
	cp_prefetch_served(&pf, 1.0, 1, 128);
	assert_int_equal(pf.window, 32); /* parts of 8 blocks */
	read_expect(&pf, size, 0, MIB, 1, 33);
	for (off = MIB; off < 64 * MIB; off += MIB) {
		cp_prefetch_plan(&pf, size, off, off + MIB, 128, &from, &to);
		/* nothing, or a whole part that continues the window */
		assert_true(to == from || to - from >= 8);
		assert_true(pf.ahead <= (uint64_t)(off / MIB) + 1 + 32);
		assert_true(pf.ahead + 8 > (uint64_t)(off / MIB) + 1 + 32);
	}
}

static void test_end_of_object(void **state)
{
	struct cp_prefetch pf;

	(void)state;
	cp_prefetch_init(&pf);
	/* 3 blocks: the window stops at the last, even if short of a part */
	read_expect(&pf, 3 * MIB - 7, 0, 128 << 10, 1, 3);
	read_expect(&pf, 3 * MIB - 7, 2 * MIB, MIB - 7, 3, 3);
	/* An object of one block has nothing ahead. */
	cp_prefetch_init(&pf);
	read_expect(&pf, 100, 0, 100, 1, 1);
}

static void test_seeks_switch_to_random_and_back(void **state)
{
	struct cp_prefetch pf;
	int64_t size = 256 * MIB, off;
	uint64_t from, to;

	(void)state;
	cp_prefetch_init(&pf);
	/* A small first read opens no window; the next in order does. */
	read_expect(&pf, size, 0, 4096, 1, 1);
	read_expect(&pf, size, 4096, 4096, 1, 9);
	/* Within the slack of what was asked ahead: still sequential. */
	read_expect(&pf, size, 10 * MIB, 4096, 11, 19);
	assert_int_equal(pf.seeks, 0);
	/* A jump: a seek, which fetches only its own bytes... */
	read_expect(&pf, size, 100 * MIB, 4096, 101, 101);
	assert_int_equal(pf.seeks, 1);
	assert_int_equal(pf.seek, 1);
	assert_int_equal(pf.random, 0);
	/* ...and the window starts again where it landed when the reader
	 * goes on in order. */
	read_expect(&pf, size, 100 * MIB + 4096, 4096, 101, 105);
	assert_int_equal(pf.seek, 0);
	assert_int_equal(pf.seeks, 1);
	/* A second jump with little read between: random, no prefetch. */
	read_expect(&pf, size, 40 * MIB, 4096, 41, 41);
	assert_int_equal(pf.random, 1);
	read_expect(&pf, size, 200 * MIB, 4096, 201, 201);
	/* A long enough run in order ends random mode. */
	for (off = 200 * MIB + 4096; off < 204 * MIB; off += 256 << 10)
		cp_prefetch_plan(&pf, size, off, off + (256 << 10), 128, &from,
				 &to);
	assert_int_equal(pf.random, 0);
	assert_int_equal(pf.seeks, 0);
}

static void test_out_of_order_readahead_is_sequential(void **state)
{
	struct cp_prefetch pf;
	int64_t size = 64 * MIB;
	uint64_t from, to;

	(void)state;
	cp_prefetch_init(&pf);
	cp_prefetch_plan(&pf, size, 0, MIB, 128, &from, &to);
	/* The kernel's readahead arrives ahead of the reads and out of
	 * order: neither is a seek. */
	cp_prefetch_plan(&pf, size, 3 * MIB, 4 * MIB, 128, &from, &to);
	cp_prefetch_plan(&pf, size, 2 * MIB, 3 * MIB, 128, &from, &to);
	cp_prefetch_plan(&pf, size, MIB, 2 * MIB, 128, &from, &to);
	assert_int_equal(pf.seeks, 0);
	assert_int_equal(pf.random, 0);
	assert_true(pf.next_off == 4 * MIB);
}

static void test_cut_and_growth(void **state)
{
	struct cp_prefetch pf;
	uint64_t from, to;

	(void)state;
	cp_prefetch_init(&pf);
	cp_prefetch_plan(&pf, 64 * MIB, 0, MIB, 128, &from, &to);
	assert_true(pf.ahead == 9);
	/* Out of budget at block 3: 3 to 8 are asked for again later. */
	cp_prefetch_cut(&pf, 3, 0);
	assert_true(pf.ahead == 3);
	assert_int_equal(pf.window, CP_WINDOW_START);
	/* A cut above what was asked changes nothing. */
	cp_prefetch_cut(&pf, 12, 0);
	assert_true(pf.ahead == 3);
	/* Growth doubles, up to the cap, and never in random mode. */
	cp_prefetch_served(&pf, 1.0, 1, 20);
	assert_int_equal(pf.window, 16);
	cp_prefetch_served(&pf, 1.0, 1, 20);
	cp_prefetch_served(&pf, 1.0, 1, 20);
	assert_int_equal(pf.window, 20);
	/* Memory short: halves, not below the minimum. */
	cp_prefetch_cut(&pf, 3, 1);
	assert_int_equal(pf.window, 10);
	cp_prefetch_cut(&pf, 3, 1);
	cp_prefetch_cut(&pf, 3, 1);
	cp_prefetch_cut(&pf, 3, 1);
	assert_int_equal(pf.window, CP_WINDOW_MIN);
	pf.random = 1;
	cp_prefetch_served(&pf, 1.0, 1, 20);
	assert_int_equal(pf.window, CP_WINDOW_MIN);
}

/* Reads @blocks MiB in order from *@off, one per @secs, none waiting;
 * then one more that waited.  The clock is *@t. */
static void stream(struct cp_prefetch *pf, int64_t *off, double *t,
		   int blocks, double secs, unsigned max)
{
	uint64_t from, to;
	int i;

	for (i = 0; i <= blocks; i++) {
		cp_prefetch_plan(pf, 4096 * MIB, *off, *off + MIB, max, &from,
				 &to);
		*off += MIB;
		*t += secs;
		cp_prefetch_served(pf, *t, i == blocks, max);
	}
}

static void test_window_follows_the_throughput(void **state)
{
	struct cp_prefetch pf;
	int64_t off = 0;
	double t = 100.0;

	(void)state;
	cp_prefetch_init(&pf);
	/* The first read starts the first round; a wait doubles. */
	stream(&pf, &off, &t, 0, 0.01, 128);
	assert_int_equal(pf.window, 2 * CP_WINDOW_START);
	/* Rounds (a window's worth read) at a rate that keeps rising by
	 * more than a quarter: every wait still doubles the window. */
	stream(&pf, &off, &t, 16, 0.01, 128);
	assert_int_equal(pf.window, 32);
	assert_int_equal(pf.full, 0);
	stream(&pf, &off, &t, 32, 0.005, 128);
	assert_int_equal(pf.window, 64);
	assert_int_equal(pf.full, 0);
	/* Two rounds with no rise: the link is full, waits no longer grow
	 * the window. */
	stream(&pf, &off, &t, 64, 0.005, 128);
	assert_int_equal(pf.window, 128);
	stream(&pf, &off, &t, 128, 0.005, 128);
	stream(&pf, &off, &t, 128, 0.005, 256);
	assert_int_equal(pf.full, 1);
	assert_int_equal(pf.window, 128);
	stream(&pf, &off, &t, 128, 0.005, 256);
	assert_int_equal(pf.window, 128);
	/* ...until it probes again, a few flat rounds later. */
	stream(&pf, &off, &t, 128, 0.005, 256);
	stream(&pf, &off, &t, 128, 0.005, 256);
	stream(&pf, &off, &t, 128, 0.005, 256);
	assert_int_equal(pf.full, 0);
	assert_int_equal(pf.window, 256);
	/* A seek forgets the rates and starts small again. */
	read_expect(&pf, 4096 * MIB, 100 * MIB, MIB, 101, 101);
	assert_int_equal(pf.window, CP_WINDOW_MIN);
	assert_int_equal(pf.full, 0);
	assert_true(pf.best_rate == 0);
}

static void test_share_caps_the_window(void **state)
{
	struct cp_prefetch pf;
	uint64_t from, to;

	(void)state;
	cp_prefetch_init(&pf);
	cp_prefetch_served(&pf, 1.0, 1, 128);
	cp_prefetch_served(&pf, 1.0, 1, 128);
	assert_int_equal(pf.window, 32);
	/* Three more readers came: a share of 12 blocks each. */
	cp_prefetch_plan(&pf, 256 * MIB, 0, MIB, 12, &from, &to);
	assert_int_equal(pf.window, 12);
	assert_true(from == 1 && to == 13);
	/* Growth stops at the share too. */
	cp_prefetch_served(&pf, 2.0, 1, 12);
	assert_int_equal(pf.window, 12);
	/* Never below the minimum, however many share. */
	cp_prefetch_plan(&pf, 256 * MIB, MIB, 2 * MIB, 1, &from, &to);
	assert_int_equal(pf.window, CP_WINDOW_MIN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_part_blocks),
		cmocka_unit_test(test_sequential_window),
		cmocka_unit_test(test_topped_up_a_whole_part_at_a_time),
		cmocka_unit_test(test_end_of_object),
		cmocka_unit_test(test_seeks_switch_to_random_and_back),
		cmocka_unit_test(test_out_of_order_readahead_is_sequential),
		cmocka_unit_test(test_cut_and_growth),
		cmocka_unit_test(test_window_follows_the_throughput),
		cmocka_unit_test(test_share_caps_the_window),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
