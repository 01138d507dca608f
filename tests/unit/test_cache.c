/*
 * test_cache.c - the block cache: LRU bound, pins, single fetch per
 * block, waiters, failure and resume, dropping a file's blocks, and
 * cp_cache_get_run(): a read's blocks pinned all at once, in turn, with
 * nothing held while it waits.  (The reader's range arithmetic is
 * tested in test_reader.c.)
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
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
	pthread_barrier_t *start;
	int ret, waited;
};

static void *wait_main(void *arg)
{
	struct waiter *w = arg;

	pthread_barrier_wait(w->start);
	w->ret = cp_cache_wait(w->c, w->b, cp_now() + 5, &w->waited);
	return NULL;
}

static void test_waiters_wake_on_complete_and_fail(void **state)
{
	struct cp_cache *c = cp_cache_new(8 * CP_BLOCK_SIZE, NULL);
	struct waiter w[4];
	pthread_barrier_t start;
	pthread_t t[4];
	struct cp_block *b;
	int i, waited = -1;

	(void)state;
	b = cp_cache_get(c, 9, 0, 1000, 1);
	assert_int_equal(cp_cache_begin_fetch(c, b), 1);
	pthread_barrier_init(&start, NULL, 5);
	for (i = 0; i < 4; i++) {
		w[i] = (struct waiter){ .c = c, .b = b, .start = &start };
		pthread_create(&t[i], NULL, wait_main, &w[i]);
	}
	/* Whether a waiter is asleep yet or not when the transfer ends,
	 * it must see the outcome: no sleep needed to line them up. */
	pthread_barrier_wait(&start);
	/* Half the bytes, then the transfer dies: they stay for resume. */
	b->filled = 500;
	cp_cache_fail(c, b, EAGAIN, 1, 7);
	assert_int_equal(cp_cache_fail_tag(c, b), 7);
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].ret, -EAGAIN);
		assert_true(w[i].waited == 0 || w[i].waited == 1);
	}
	pthread_barrier_destroy(&start);
	/* A block that is not being fetched is no reason to sleep. */
	assert_int_equal(cp_cache_wait(c, b, cp_now() + 1, &waited), -EAGAIN);
	assert_int_equal(waited, 0);
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
	int waited = 0;

	(void)state;
	cp_cache_begin_fetch(c, b);
	assert_int_equal(cp_cache_wait(c, b, t0 + 0.1, &waited), -ETIMEDOUT);
	assert_true(cp_now() - t0 >= 0.09);
	assert_int_equal(waited, 1);
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
	cp_cache_served(c, &b, 1, 0, b->want);
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
	struct cp_cache *c = cp_cache_new(2 * CP_BLOCK_SIZE, NULL);
	struct cp_block *a, *b, *z, *held;
	char *buf;

	(void)state;
	/* A full cache: a block read to its end by a sequential reader goes
	 * first, though another was used longer ago. */
	z = cp_cache_get(c, 9, 0, 10, CP_GET_CREATE);
	fill(c, z, 'z');
	cp_cache_unpin(c, z);
	a = cp_cache_get(c, 1, 0, 10, CP_GET_CREATE);
	fill(c, a, 'a');
	buf = a->data;
	cp_cache_served(c, &a, 1, 0, a->want);
	cp_cache_unpin(c, a);
	b = cp_cache_get(c, 1, 1, 10, CP_GET_PREFETCH);
	assert_ptr_equal(b->data, buf);
	assert_null(cp_cache_get(c, 1, 0, 10, CP_GET_FIND));
	z = cp_cache_get(c, 9, 0, 10, CP_GET_FIND);
	assert_non_null(z);
	cp_cache_unpin(c, z);
	fill(c, b, 'b');
	cp_cache_unpin(c, b);
	/* Not while someone still holds it ... */
	held = cp_cache_get(c, 1, 1, 10, CP_GET_CREATE);
	cp_cache_served(c, &held, 1, 0, held->want);
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

static void test_room_left_keeps_consumed_blocks(void **state)
{
	struct cp_cache *c = cp_cache_new(4 * CP_BLOCK_SIZE, NULL);
	struct cp_block *a, *b;

	(void)state;
	/* While there is room, a block read through stays: a reader may
	 * read it again once the kernel dropped its pages. */
	a = cp_cache_get(c, 1, 0, 10, CP_GET_CREATE);
	fill(c, a, 'a');
	cp_cache_served(c, &a, 1, 0, a->want);
	cp_cache_unpin(c, a);
	b = cp_cache_get(c, 1, 1, 10, CP_GET_PREFETCH);
	assert_non_null(b);
	cp_cache_unpin(c, b);
	a = cp_cache_get(c, 1, 0, 10, CP_GET_FIND);
	assert_non_null(a);
	assert_int_equal(a->data[0], 'a');
	cp_cache_unpin(c, a);
	cp_cache_free(c);
}

static void test_served_counts_bytes_of_straddling_reads(void **state)
{
	struct cp_cache *c = cp_cache_new(3 * CP_BLOCK_SIZE, NULL);
	struct cp_block *run[2], *a, *b, *x;
	size_t half = CP_BLOCK_SIZE / 2;
	char *abuf;

	(void)state;
	/* The kernel reads 1 MiB from 512 KiB on: each read ends inside a
	 * block, and gives out half of two blocks. */
	a = cp_cache_get(c, 1, 0, CP_BLOCK_SIZE, CP_GET_CREATE);
	fill(c, a, 'a');
	abuf = a->data;
	b = cp_cache_get(c, 1, 1, CP_BLOCK_SIZE, CP_GET_CREATE);
	fill(c, b, 'b');
	run[0] = a;
	run[1] = b;
	cp_cache_served(c, run, 2, half, CP_BLOCK_SIZE);
	cp_cache_unpin(c, a);
	cp_cache_unpin(c, b);
	x = cp_cache_get(c, 2, 0, 10, CP_GET_CREATE);
	assert_ptr_not_equal(x->data, abuf); /* a is half read: kept */
	fill(c, x, 'x');
	cp_cache_unpin(c, x);
	/* Memory is full: a read evicts x, used last but read through,
	 * not a or b, whose other halves are still to be read. */
	x = cp_cache_get(c, 3, 0, 10, CP_GET_CREATE);
	assert_non_null(x);
	cp_cache_unpin(c, x);
	assert_null(cp_cache_get(c, 2, 0, 10, CP_GET_FIND));
	/* The first half of a, read last (out of order): now a is read
	 * through, and its buffer is the next to be reused. */
	a = cp_cache_get(c, 1, 0, 0, CP_GET_FIND);
	assert_non_null(a);
	cp_cache_served(c, &a, 1, 0, half);
	cp_cache_unpin(c, a);
	x = cp_cache_get(c, 4, 0, 10, CP_GET_CREATE);
	assert_ptr_equal(x->data, abuf);
	cp_cache_unpin(c, x);
	b = cp_cache_get(c, 1, 1, 0, CP_GET_FIND);
	assert_non_null(b);
	cp_cache_unpin(c, b);
	cp_cache_free(c);
}

static void test_read_spares_unread_prefetch(void **state)
{
	struct cp_cache *c = cp_cache_new(2 * CP_BLOCK_SIZE, NULL);
	struct cp_block *p, *r;

	(void)state;
	/* Another reader's window, not read yet, is older than a block a
	 * read made: a new read evicts the read block first. */
	p = cp_cache_get(c, 1, 0, 10, CP_GET_PREFETCH);
	fill(c, p, 'p');
	cp_cache_unpin(c, p);
	r = cp_cache_get(c, 2, 0, 10, CP_GET_CREATE);
	fill(c, r, 'r');
	cp_cache_unpin(c, r);
	r = cp_cache_get(c, 3, 0, 10, CP_GET_CREATE);
	assert_non_null(r);
	cp_cache_unpin(c, r);
	assert_null(cp_cache_get(c, 2, 0, 10, CP_GET_FIND));
	p = cp_cache_get(c, 1, 0, 10, CP_GET_FIND);
	assert_non_null(p);
	/* Read in part (its reader's next read is to come): another
	 * reader's prefetch does not take it either. */
	cp_cache_served(c, &p, 1, 0, 4);
	cp_cache_unpin(c, p);
	r = cp_cache_get(c, 3, 0, 10, CP_GET_FIND);
	fill(c, r, 'r');
	cp_cache_unpin(c, r);
	p = cp_cache_get(c, 4, 0, 10, CP_GET_PREFETCH);
	assert_non_null(p);
	cp_cache_unpin(c, p);
	assert_null(cp_cache_get(c, 3, 0, 10, CP_GET_FIND));
	p = cp_cache_get(c, 1, 0, 10, CP_GET_FIND);
	assert_non_null(p);
	cp_cache_unpin(c, p);
	cp_cache_free(c);
}

static void test_get_run(void **state)
{
	struct cp_cache *c = cp_cache_new(4 * CP_BLOCK_SIZE, NULL);
	struct cp_block *run[4], *held;

	(void)state;
	/* Two blocks, the last one short; one of them there already. */
	held = cp_cache_get(c, 1, 1, 10, CP_GET_CREATE);
	assert_int_equal(cp_cache_get_run(c, 1, 0, 2,
					  CP_BLOCK_SIZE + 100, run,
					  cp_now() + 1),
			 0);
	assert_true(run[0]->index == 0 && run[0]->want == CP_BLOCK_SIZE);
	assert_ptr_equal(run[1], held);
	cp_cache_unpin(c, run[0]);
	cp_cache_unpin(c, run[1]);
	/* Size unknown (a probe): whole blocks. */
	assert_int_equal(cp_cache_get_run(c, 2, 0, 1, -1, run, cp_now() + 1),
			 0);
	assert_true(run[0]->want == CP_BLOCK_SIZE);
	cp_cache_unpin(c, run[0]);
	/* More blocks than the cache holds can never be had. */
	assert_int_equal(cp_cache_get_run(c, 1, 0, 5, -1, run, cp_now() + 1),
			 -E2BIG);
	cp_cache_unpin(c, held);
	cp_cache_free(c);
}

static void test_get_run_holds_nothing_while_it_waits(void **state)
{
	struct cp_cache *c = cp_cache_new(2 * CP_BLOCK_SIZE, NULL);
	struct cp_block *held, *run[2];

	(void)state;
	/* One slot of two is held: a run of two does not fit.  It must
	 * not take the free slot and sit on it (that is how readers
	 * deadlocked), and gives up at its deadline. */
	held = cp_cache_get(c, 7, 0, 10, CP_GET_CREATE);
	assert_int_equal(cp_cache_get_run(c, 1, 0, 2, -1, run,
					  cp_now() + 0.05),
			 -ETIMEDOUT);
	assert_null(cp_cache_get(c, 1, 0, 0, CP_GET_FIND));
	assert_null(cp_cache_get(c, 1, 1, 0, CP_GET_FIND));
	/* The free slot is still there for a read of one block. */
	assert_int_equal(cp_cache_get_run(c, 1, 0, 1, -1, run, cp_now() + 1),
			 0);
	cp_cache_unpin(c, run[0]);
	cp_cache_unpin(c, held);
	cp_cache_free(c);
}

struct run_waiter {
	struct cp_cache *c;
	int ret;
	struct cp_block *run[2];
};

static void *run_main(void *arg)
{
	struct run_waiter *w = arg;

	w->ret = cp_cache_get_run(w->c, 5, 0, 2, -1, w->run, cp_now() + 10);
	return NULL;
}

static void test_get_run_first_come_first_served(void **state)
{
	struct cp_cache *c = cp_cache_new(3 * CP_BLOCK_SIZE, NULL);
	struct run_waiter w = { .c = c };
	struct cp_block *a, *b, *p, *run[1];
	double until;
	uint64_t i = 0;
	pthread_t t;

	(void)state;
	a = cp_cache_get(c, 9, 0, 10, CP_GET_CREATE);
	b = cp_cache_get(c, 9, 1, 10, CP_GET_CREATE);
	/* One slot free; the thread needs two, so it queues. */
	pthread_create(&t, NULL, run_main, &w);
	/* A queued read keeps prefetches from making blocks: that is how
	 * this thread sees it has queued (no sleep).  Each probe block is
	 * dropped again, so the free slot never holds an unread prefetch
	 * (which a prefetch may not evict: NULL for the wrong reason). */
	until = cp_now() + 5;
	while ((p = cp_cache_get(c, 8, i++, 10, CP_GET_PREFETCH))) {
		/* Dropped, so that the slot is free again: a prefetched
		 * block no reader asked for is not evicted by the next
		 * prefetch, which would end this loop too early. */
		cp_cache_unpin(c, p);
		cp_cache_drop_key(c, 8);
		assert_true(cp_now() < until);
		sched_yield();
	}
	/* A read of one block fits the free slot but must not overtake the
	 * read that waits for two. */
	assert_int_equal(cp_cache_get_run(c, 6, 0, 1, -1, run,
					  cp_now() + 0.05),
			 -ETIMEDOUT);
	/* One more slot comes free: the first in line gets both. */
	cp_cache_unpin(c, a);
	pthread_join(t, NULL);
	assert_int_equal(w.ret, 0);
	assert_true(w.run[0]->key == 5 && w.run[1]->index == 1);
	/* Queue empty again: the one-block read is served. */
	cp_cache_unpin(c, w.run[0]);
	assert_int_equal(cp_cache_get_run(c, 6, 0, 1, -1, run, cp_now() + 1),
			 0);
	cp_cache_unpin(c, run[0]);
	cp_cache_unpin(c, w.run[1]);
	cp_cache_unpin(c, b);
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
		cmocka_unit_test(test_room_left_keeps_consumed_blocks),
		cmocka_unit_test(test_served_counts_bytes_of_straddling_reads),
		cmocka_unit_test(test_read_spares_unread_prefetch),
		cmocka_unit_test(test_get_run),
		cmocka_unit_test(test_get_run_holds_nothing_while_it_waits),
		cmocka_unit_test(test_get_run_first_come_first_served),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
