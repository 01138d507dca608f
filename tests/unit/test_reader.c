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

	cp_prefetch_plan(pf, size, off, off + len, &from, &to);
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
	assert_int_equal(pf.window, CP_WINDOW_MIN);
	/* Cold start: the window of 4 blocks after the first. */
	read_expect(&pf, size, 0, 128 << 10, 1, 5);
	/* The rest of block 0: all of the window is asked for already. */
	read_expect(&pf, size, 128 << 10, MIB - (128 << 10), 5, 5);
	/* Block 1: one block short of the window, one whole part (1
	 * block for a window of 4) is topped up. */
	read_expect(&pf, size, MIB, MIB, 5, 6);
	assert_int_equal(pf.random, 0);
	assert_true(pf.next_off == 2 * MIB);
}

static void test_topped_up_a_whole_part_at_a_time(void **state)
{
	struct cp_prefetch pf;
	int64_t size = 256 * MIB, off;
	uint64_t from, to;

	(void)state;
	cp_prefetch_init(&pf);
	cp_prefetch_waited(&pf, 128);
	cp_prefetch_waited(&pf, 128);
	cp_prefetch_waited(&pf, 128);
	assert_int_equal(pf.window, 32); /* parts of 8 blocks */
	read_expect(&pf, size, 0, MIB, 1, 33);
	for (off = MIB; off < 64 * MIB; off += MIB) {
		cp_prefetch_plan(&pf, size, off, off + MIB, &from, &to);
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
	read_expect(&pf, size, 4096, 4096, 1, 5);
	/* Within the slack of what was asked ahead: still sequential. */
	read_expect(&pf, size, 10 * MIB, 4096, 11, 15);
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
		cp_prefetch_plan(&pf, size, off, off + (256 << 10), &from, &to);
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
	cp_prefetch_plan(&pf, size, 0, MIB, &from, &to);
	/* The kernel's readahead arrives ahead of the reads and out of
	 * order: neither is a seek. */
	cp_prefetch_plan(&pf, size, 3 * MIB, 4 * MIB, &from, &to);
	cp_prefetch_plan(&pf, size, 2 * MIB, 3 * MIB, &from, &to);
	cp_prefetch_plan(&pf, size, MIB, 2 * MIB, &from, &to);
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
	cp_prefetch_plan(&pf, 64 * MIB, 0, MIB, &from, &to);
	assert_true(pf.ahead == 5);
	/* Out of budget at block 3: 3 and 4 are asked for again later. */
	cp_prefetch_cut(&pf, 3, 0);
	assert_true(pf.ahead == 3);
	assert_int_equal(pf.window, CP_WINDOW_MIN);
	/* A cut above what was asked changes nothing. */
	cp_prefetch_cut(&pf, 9, 0);
	assert_true(pf.ahead == 3);
	/* Growth doubles, up to the cap, and never in random mode. */
	cp_prefetch_waited(&pf, 20);
	assert_int_equal(pf.window, 8);
	cp_prefetch_waited(&pf, 20);
	cp_prefetch_waited(&pf, 20);
	assert_int_equal(pf.window, 20);
	/* Memory short: halves, not below the minimum. */
	cp_prefetch_cut(&pf, 3, 1);
	assert_int_equal(pf.window, 10);
	cp_prefetch_cut(&pf, 3, 1);
	cp_prefetch_cut(&pf, 3, 1);
	cp_prefetch_cut(&pf, 3, 1);
	assert_int_equal(pf.window, CP_WINDOW_MIN);
	pf.random = 1;
	cp_prefetch_waited(&pf, 20);
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
