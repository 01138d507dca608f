/*
 * test_cache.c - the block cache: LRU bound, pins, single fetch per
 * block, waiters, failure and resume, dropping a file's blocks; and the
 * range/block arithmetic the reader relies on.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cache.h"
#include "stats.h"
#include "util.h"

static void test_capacity_minimum(void **state)
{
	struct cp_cache *c = cp_cache_new(0, NULL);

	(void)state;
	assert_non_null(c);
	assert_int_equal(cp_cache_capacity(c), 2);
	cp_cache_free(c);
	c = cp_cache_new(10 * CP_BLOCK_SIZE + 5, NULL);
	assert_int_equal(cp_cache_capacity(c), 10);
	cp_cache_free(c);
}

/* Fills block @b as a transfer would. */
static void fill(struct cp_cache *c, struct cp_block *b, char byte)
{
	assert_int_equal(cp_cache_begin_fetch(c, b), 1);
	memset(b->data, byte, b->want);
	b->filled = b->want;
	cp_cache_complete(c, b);
}

static void test_lru_bound(void **state)
{
	struct cp_stats stats;
	struct cp_cache *c;
	struct cp_block *b;
	uint64_t i;

	(void)state;
	memset(&stats, 0, sizeof(stats));
	c = cp_cache_new(4 * CP_BLOCK_SIZE, &stats);
	for (i = 0; i < 4; i++) {
		b = cp_cache_get(c, 7, i, CP_BLOCK_SIZE, 1);
		assert_non_null(b);
		fill(c, b, (char)i);
		cp_cache_unpin(c, b);
	}
	/* Touch block 0 so block 1 is the least recently used. */
	b = cp_cache_get(c, 7, 0, CP_BLOCK_SIZE, 0);
	assert_non_null(b);
	assert_int_equal(cp_cache_state(c, b, NULL), CP_BLOCK_READY);
	cp_cache_unpin(c, b);
	b = cp_cache_get(c, 7, 4, CP_BLOCK_SIZE, 1);
	assert_non_null(b);
	assert_int_equal(cp_cache_state(c, b, NULL), CP_BLOCK_EMPTY);
	cp_cache_unpin(c, b);
	assert_null(cp_cache_get(c, 7, 1, CP_BLOCK_SIZE, 0));
	b = cp_cache_get(c, 7, 0, CP_BLOCK_SIZE, 0);
	assert_non_null(b);
	assert_int_equal(b->data[0], 0);
	cp_cache_unpin(c, b);
	assert_true(atomic_load(&stats.cache_hits) >= 2);
	cp_cache_free(c);
}

static void test_pinned_blocks_are_not_evicted(void **state)
{
	struct cp_cache *c = cp_cache_new(2 * CP_BLOCK_SIZE, NULL);
	struct cp_block *a, *b;

	(void)state;
	a = cp_cache_get(c, 1, 0, 100, 1);
	b = cp_cache_get(c, 1, 1, 100, 1);
	assert_non_null(a);
	assert_non_null(b);
	/* Both pinned: no room for a third, the caller must shrink. */
	assert_null(cp_cache_get(c, 1, 2, 100, 1));
	{
		struct cp_block *run[1];

		assert_int_equal(cp_cache_get_run(c, 1, 2, 1, 100, run,
						  cp_now() + 0.05),
				 -ETIMEDOUT);
	}
	cp_cache_unpin(c, a);
	a = cp_cache_get(c, 1, 2, 100, 1);
	assert_non_null(a);
	assert_int_equal(a->index, 2);
	cp_cache_unpin(c, a);
	cp_cache_unpin(c, b);
	cp_cache_free(c);
}

static void test_single_fetch_per_block(void **state)
{
	struct cp_cache *c = cp_cache_new(8 * CP_BLOCK_SIZE, NULL);
	struct cp_block *a, *b;

	(void)state;
	a = cp_cache_get(c, 3, 5, CP_BLOCK_SIZE, 1);
	b = cp_cache_get(c, 3, 5, CP_BLOCK_SIZE, 1);
	assert_ptr_equal(a, b);
	assert_int_equal(cp_cache_begin_fetch(c, a), 1);
	assert_int_equal(cp_cache_begin_fetch(c, b), 0);
	assert_int_equal(cp_cache_fetching(c), 1);
	/* A fetching block is never evicted, even unpinned by readers. */
	cp_cache_unpin(c, a);
	cp_cache_unpin(c, b);
	assert_int_equal(cp_cache_state(c, a, NULL), CP_BLOCK_FETCHING);
	a->filled = a->want;
	cp_cache_complete(c, a);
	assert_int_equal(cp_cache_fetching(c), 0);
	b = cp_cache_get(c, 3, 5, CP_BLOCK_SIZE, 0);
	assert_int_equal(cp_cache_begin_fetch(c, b), 0);
	cp_cache_unpin(c, b);
	cp_cache_free(c);
}

struct waiter {
	struct cp_cache *c;
	struct cp_block *b;
	int ret, waited;
};

static void *wait_main(void *arg)
{
	struct waiter *w = arg;

	w->ret = cp_cache_wait(w->c, w->b, cp_now() + 5, &w->waited);
	return NULL;
}

static void test_waiters_wake_on_complete_and_fail(void **state)
{
	struct cp_cache *c = cp_cache_new(8 * CP_BLOCK_SIZE, NULL);
	struct waiter w[4];
	pthread_t t[4];
	struct cp_block *b;
	int i;

	(void)state;
	b = cp_cache_get(c, 9, 0, 1000, 1);
	assert_int_equal(cp_cache_begin_fetch(c, b), 1);
	for (i = 0; i < 4; i++) {
		w[i] = (struct waiter){ .c = c, .b = b };
		pthread_create(&t[i], NULL, wait_main, &w[i]);
	}
	cp_sleep(0.05);
	/* Half the bytes, then the transfer dies: they stay for resume. */
	b->filled = 500;
	cp_cache_fail(c, b, EAGAIN, 1, 7);
	assert_int_equal(cp_cache_fail_tag(c, b), 7);
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].ret, -EAGAIN);
		assert_int_equal(w[i].waited, 1);
	}
	assert_int_equal(b->filled, 500);
	assert_int_equal(cp_cache_begin_fetch(c, b), -EAGAIN); /* a retry */
	b->filled = 1000;
	cp_cache_complete(c, b);
	assert_int_equal(cp_cache_wait(c, b, cp_now() + 1, NULL), 0);
	/* A refused answer is not kept. */
	cp_cache_unpin(c, b);
	b = cp_cache_get(c, 9, 1, 1000, 1);
	cp_cache_begin_fetch(c, b);
	b->filled = 10;
	cp_cache_fail(c, b, EPROTO, 0, 0);
	assert_int_equal(b->filled, 0);
	cp_cache_unpin(c, b);
	cp_cache_free(c);
}

static void test_wait_times_out(void **state)
{
	struct cp_cache *c = cp_cache_new(8 * CP_BLOCK_SIZE, NULL);
	struct cp_block *b = cp_cache_get(c, 1, 0, 10, 1);
	double t0 = cp_now();

	(void)state;
	cp_cache_begin_fetch(c, b);
	assert_int_equal(cp_cache_wait(c, b, t0 + 0.1, NULL), -ETIMEDOUT);
	assert_true(cp_now() - t0 >= 0.09);
	b->filled = 10;
	cp_cache_complete(c, b);
	cp_cache_unpin(c, b);
	cp_cache_free(c);
}

static void test_drop_key(void **state)
{
	struct cp_cache *c = cp_cache_new(4 * CP_BLOCK_SIZE, NULL);
	struct cp_block *pinned, *b;

	(void)state;
	b = cp_cache_get(c, 5, 0, 10, 1);
	fill(c, b, 'a');
	cp_cache_unpin(c, b);
	pinned = cp_cache_get(c, 5, 1, 10, 1);
	fill(c, pinned, 'b');
	b = cp_cache_get(c, 6, 0, 10, 1);
	fill(c, b, 'c');
	cp_cache_unpin(c, b);
	cp_cache_drop_key(c, 5);
	assert_null(cp_cache_get(c, 5, 0, 10, 0));
	assert_null(cp_cache_get(c, 5, 1, 10, 0));
	/* The pinned block lives on for its holder, detached. */
	assert_int_equal(pinned->data[0], 'b');
	assert_int_equal(pinned->detached, 1);
	b = cp_cache_get(c, 6, 0, 10, 0);
	assert_non_null(b);
	cp_cache_unpin(c, b);
	cp_cache_unpin(c, pinned);
	/* Its memory came back: four new blocks fit. */
	for (uint64_t i = 10; i < 13; i++) {
		b = cp_cache_get(c, 7, i, 10, 1);
		assert_non_null(b);
		cp_cache_unpin(c, b);
	}
	cp_cache_free(c);
}

static void test_demote_and_unsaved(void **state)
{
	struct cp_cache *c = cp_cache_new(2 * CP_BLOCK_SIZE, NULL);
	struct cp_block *a, *b;

	(void)state;
	a = cp_cache_get(c, 1, 0, 10, 1);
	fill(c, a, 'a');
	b = cp_cache_get(c, 1, 1, 10, 1);
	fill(c, b, 'b');
	assert_int_equal(cp_cache_take_unsaved(c, b), 1);
	assert_int_equal(cp_cache_take_unsaved(c, b), 0);
	cp_cache_demote(c, b);
	cp_cache_unpin(c, a);
	cp_cache_unpin(c, b);
	/* b was demoted: it goes first although used last. */
	a = cp_cache_get(c, 1, 2, 10, 1);
	cp_cache_unpin(c, a);
	assert_null(cp_cache_get(c, 1, 1, 10, 0));
	a = cp_cache_get(c, 1, 0, 10, 0);
	assert_non_null(a);
	cp_cache_unpin(c, a);
	cp_cache_free(c);
}

static void test_prefetch_keeps_unread_prefetch(void **state)
{
	struct cp_cache *c = cp_cache_new(2 * CP_BLOCK_SIZE, NULL);
	struct cp_block *a, *b;

	(void)state;
	/* Reader 1 prefetched blocks 0 and 1 of file 1; nobody read them. */
	a = cp_cache_get(c, 1, 0, 10, CP_GET_PREFETCH);
	fill(c, a, 'a');
	cp_cache_unpin(c, a);
	b = cp_cache_get(c, 1, 1, 10, CP_GET_PREFETCH);
	fill(c, b, 'b');
	cp_cache_unpin(c, b);
	/* Reader 2's prefetch may not take them ... */
	assert_null(cp_cache_get(c, 2, 0, 10, CP_GET_PREFETCH));
	/* ... once read, block 0 may go; a demand read takes any. */
	a = cp_cache_get(c, 1, 0, 10, CP_GET_CREATE);
	cp_cache_unpin(c, a);
	a = cp_cache_get(c, 2, 0, 10, CP_GET_PREFETCH);
	assert_non_null(a);
	cp_cache_unpin(c, a);
	assert_null(cp_cache_get(c, 1, 0, 10, CP_GET_FIND));
	a = cp_cache_get(c, 3, 0, 10, CP_GET_CREATE);
	assert_non_null(a);
	cp_cache_unpin(c, a);
	cp_cache_free(c);
}

static void test_consumed_buffers_are_reused_first(void **state)
{
	struct cp_cache *c = cp_cache_new(8 * CP_BLOCK_SIZE, NULL);
	struct cp_block *a, *b, *held;
	char *buf;

	(void)state;
	/* A block read to its end by a sequential reader: its buffer goes
	 * to the next new block, not a slot never touched. */
	a = cp_cache_get(c, 1, 0, 10, CP_GET_CREATE);
	fill(c, a, 'a');
	buf = a->data;
	cp_cache_demote(c, a);
	cp_cache_unpin(c, a);
	b = cp_cache_get(c, 1, 1, 10, CP_GET_PREFETCH);
	assert_ptr_equal(b->data, buf);
	assert_null(cp_cache_get(c, 1, 0, 10, CP_GET_FIND));
	fill(c, b, 'b');
	cp_cache_unpin(c, b);
	/* Not while someone still holds it ... */
	held = cp_cache_get(c, 1, 1, 10, CP_GET_CREATE);
	cp_cache_demote(c, held);
	a = cp_cache_get(c, 1, 2, 10, CP_GET_CREATE);
	assert_ptr_not_equal(a->data, buf);
	cp_cache_unpin(c, a);
	cp_cache_unpin(c, held);
	/* ... and not once it is asked for again: it is kept. */
	held = cp_cache_get(c, 1, 1, 10, CP_GET_FIND);
	assert_non_null(held);
	cp_cache_unpin(c, held);
	a = cp_cache_get(c, 1, 3, 10, CP_GET_CREATE);
	assert_ptr_not_equal(a->data, buf);
	cp_cache_unpin(c, a);
	held = cp_cache_get(c, 1, 1, 10, CP_GET_FIND);
	assert_non_null(held);
	cp_cache_unpin(c, held);
	cp_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_capacity_minimum),
		cmocka_unit_test(test_lru_bound),
		cmocka_unit_test(test_pinned_blocks_are_not_evicted),
		cmocka_unit_test(test_single_fetch_per_block),
		cmocka_unit_test(test_waiters_wake_on_complete_and_fail),
		cmocka_unit_test(test_wait_times_out),
		cmocka_unit_test(test_drop_key),
		cmocka_unit_test(test_demote_and_unsaved),
		cmocka_unit_test(test_prefetch_keeps_unread_prefetch),
		cmocka_unit_test(test_consumed_buffers_are_reused_first),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
