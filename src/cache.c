/*
 * cache.c - the block cache (see cache.h for the model).
 *
 * Owns: every block and its buffer, the hash index, the LRU list.
 * Threads: FUSE workers (lookups, waits, pins) and the fetch engine's
 * I/O threads (complete/fail).  Everything but block data is under
 * cache->lock; a block's end wakes the waiters of its bucket of blocks.
 */
#include "cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "loop.h"
#include "stats.h"
#include "util.h"

#define CHANGED_BUCKETS 64

struct cp_cache {
	pthread_mutex_t lock;
	/* A block finished (cp_cache_wait()): one condition per bucket of
	 * blocks, so that a block's end wakes only the reads waiting for a
	 * block of its bucket, not every read waiting for any block (with 4
	 * streams, 16 or more reads wait at once). */
	pthread_cond_t changed[CHANGED_BUCKETS];
	pthread_cond_t room;      /* memory may have come free: a block
				   * unpinned, finished or freed, or the
				   * first waiter left; signalled only when
				   * reads wait for memory (waiters) */
	struct cp_block **buckets;
	size_t nbuckets;          /* power of two */
	size_t capacity;          /* blocks */
	size_t nblocks;           /* blocks that own a buffer */
	size_t nfetching;
	struct cp_block *lru_head, *lru_tail;
	struct cp_stats *stats;
	int stopping;             /* protected by lock */
	char *arena;              /* capacity slots of CP_BLOCK_SIZE */
	size_t arena_size;
	size_t *free_slots;       /* stack of free slot numbers */
	size_t nfree;
	struct mem_waiter *waiters, *waiters_tail; /* FIFO; lock */
};

/* A read waiting for memory (cp_cache_get_run()); lives on its stack. */
struct mem_waiter {
	struct mem_waiter *next;
};

static size_t bucket_of(const struct cp_cache *cache, uint64_t key,
			uint64_t index)
{
	uint64_t h = key * 0x9E3779B97F4A7C15ULL ^ index * 0xC2B2AE3D27D4EB4FULL;

	h ^= h >> 29;
	return (size_t)h & (cache->nbuckets - 1);
}

struct cp_cache *cp_cache_new(uint64_t bytes, struct cp_stats *stats)
{
	struct cp_cache *cache = calloc(1, sizeof(*cache));
	int i;

	if (!cache)
		return NULL;
	cache->capacity = bytes / CP_BLOCK_SIZE;
	if (cache->capacity < 2)
		cache->capacity = 2;
	cache->nbuckets = 16;
	while (cache->nbuckets < 2 * cache->capacity)
		cache->nbuckets *= 2;
	cache->buckets = calloc(cache->nbuckets, sizeof(*cache->buckets));
	cache->free_slots = malloc(cache->capacity * sizeof(size_t));
	cache->arena_size = cache->capacity * CP_BLOCK_SIZE;
	cache->arena = mmap(NULL, cache->arena_size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (!cache->buckets || !cache->free_slots ||
	    cache->arena == MAP_FAILED) {
		if (cache->arena != MAP_FAILED)
			munmap(cache->arena, cache->arena_size);
		free(cache->free_slots);
		free(cache->buckets);
		free(cache);
		return NULL;
	}
	madvise(cache->arena, cache->arena_size, MADV_HUGEPAGE);
	/* Hand out low slots first, so huge pages fill up in pairs. */
	for (cache->nfree = 0; cache->nfree < cache->capacity; cache->nfree++)
		cache->free_slots[cache->nfree] =
			cache->capacity - 1 - cache->nfree;
	pthread_mutex_init(&cache->lock, NULL);
	for (i = 0; i < CHANGED_BUCKETS; i++)
		pthread_cond_init(&cache->changed[i], NULL);
	pthread_cond_init(&cache->room, NULL);
	cache->stats = stats;
	return cache;
}

/* Where the reads waiting for @b wait (a pinned block keeps its key and
 * index, so the bucket stays the same while anyone waits). */
static pthread_cond_t *changed_of(struct cp_cache *cache,
				  const struct cp_block *b)
{
	uint64_t h = b->key * 0x9E3779B97F4A7C15ULL ^ b->index;

	return &cache->changed[h % CHANGED_BUCKETS];
}

static void lru_unlink(struct cp_cache *cache, struct cp_block *b)
{
	if (b->lru_prev)
		b->lru_prev->lru_next = b->lru_next;
	else
		cache->lru_head = b->lru_next;
	if (b->lru_next)
		b->lru_next->lru_prev = b->lru_prev;
	else
		cache->lru_tail = b->lru_prev;
	b->lru_prev = b->lru_next = NULL;
}

static void lru_push_head(struct cp_cache *cache, struct cp_block *b)
{
	b->lru_prev = NULL;
	b->lru_next = cache->lru_head;
	if (cache->lru_head)
		cache->lru_head->lru_prev = b;
	cache->lru_head = b;
	if (!cache->lru_tail)
		cache->lru_tail = b;
}

static void hash_remove(struct cp_cache *cache, struct cp_block *b)
{
	struct cp_block **p = &cache->buckets[bucket_of(cache, b->key,
							  b->index)];

	while (*p && *p != b)
		p = &(*p)->hnext;
	if (*p)
		*p = b->hnext;
	b->hnext = NULL;
}

/*
 * Block buffers are slots of one arena reserved at start (address space
 * only: a slot becomes resident when first written).  The arena asks for
 * transparent huge pages, so filling a fresh block costs one page fault
 * per 2 MiB instead of 256, and copies run with fewer TLB misses.
 */
static char *slot_take(struct cp_cache *cache)
{
	if (cache->nfree == 0)
		return NULL;
	return cache->arena + cache->free_slots[--cache->nfree] * CP_BLOCK_SIZE;
}

static void slot_give(struct cp_cache *cache, char *data)
{
	cache->free_slots[cache->nfree++] =
		(size_t)(data - cache->arena) / CP_BLOCK_SIZE;
}

/* Wakes the reads waiting for memory, if any (with the lock held): a
 * reply's unpin must not wake every reader waiting for its blocks. */
static void room_changed(struct cp_cache *cache)
{
	if (cache->waiters)
		pthread_cond_broadcast(&cache->room);
}

static void block_destroy(struct cp_cache *cache, struct cp_block *b)
{
	slot_give(cache, b->data);
	free(b);
	cache->nblocks--;
	room_changed(cache);
}

void cp_cache_free(struct cp_cache *cache)
{
	struct cp_block *b, *next;
	int i;

	if (!cache)
		return;
	for (b = cache->lru_head; b; b = next) {
		next = b->lru_next;
		free(b);
	}
	munmap(cache->arena, cache->arena_size);
	free(cache->free_slots);
	free(cache->buckets);
	pthread_mutex_destroy(&cache->lock);
	for (i = 0; i < CHANGED_BUCKETS; i++)
		pthread_cond_destroy(&cache->changed[i]);
	pthread_cond_destroy(&cache->room);
	free(cache);
}

size_t cp_cache_capacity(const struct cp_cache *cache)
{
	return cache->capacity;
}

static struct cp_block *find(struct cp_cache *cache, uint64_t key,
			     uint64_t index)
{
	struct cp_block *b = cache->buckets[bucket_of(cache, key, index)];

	while (b && (b->key != key || b->index != index))
		b = b->hnext;
	return b;
}

/* Prefetched data nobody read yet, and a block read in part, are kept
 * from other prefetches this long: readers sharing the cache must not
 * evict each other's window or next block. */
#define UNREAD_GRACE 5.0

/* A block a reader is still to come for: prefetched and not read yet,
 * or read in part by a sequential reader (the rest of it is next). */
static int awaited(const struct cp_block *b)
{
	return b->unread || b->given > 0;
}

/*
 * A block that nobody uses and that holds nothing being written; for a
 * prefetch, also not one a reader is still to come for, prefetched or
 * read in part recently (another reader's window or its next read).  A read
 * takes a block a reader is still to come for only when there is no
 * other: a reader slower than the rest (or one the scheduler let wait)
 * would otherwise find its window gone and fetch it again.
 */
static struct cp_block *evictable(struct cp_cache *cache, int prefetch)
{
	double now = prefetch ? cp_now() : 0;
	struct cp_block *b, *later = NULL;

	for (b = cache->lru_tail; b; b = b->lru_prev) {
		if (b->pins || b->state == CP_BLOCK_FETCHING)
			continue;
		if (!prefetch && awaited(b)) {
			if (!later)
				later = b;
			continue;
		}
		if (awaited(b) && now - b->created < UNREAD_GRACE)
			continue;
		return b;
	}
	return later;
}

/* Demoted blocks sit together at the cold end of the LRU: the first of
 * them nobody holds, or NULL. */
static struct cp_block *recyclable(struct cp_cache *cache)
{
	struct cp_block *b;

	for (b = cache->lru_tail; b && b->consumed; b = b->lru_prev)
		if (!b->pins && b->state == CP_BLOCK_READY)
			return b;
	return NULL;
}

/* Called with the lock held; returns a pinned block or NULL. */
static struct cp_block *get_locked(struct cp_cache *cache, uint64_t key,
				   uint64_t index, size_t want, int create)
{
	struct cp_block *b = find(cache, key, index);
	char *data = NULL;

	if (b) {
		b->pins++;
		b->consumed = 0;
		if (create != CP_GET_PREFETCH)
			b->unread = 0;
		lru_unlink(cache, b);
		lru_push_head(cache, b);
		if (cache->stats) {
			if (b->state == CP_BLOCK_READY)
				cp_stats_inc(cache->stats, cache_hits);
			else
				cp_stats_inc(cache->stats, cache_misses);
		}
		return b;
	}
	if (!create)
		return NULL;
	/* Reads waiting for memory come before a prefetch. */
	if (create == CP_GET_PREFETCH && cache->waiters)
		return NULL;
	if (cache->nblocks < cache->capacity) {
		/* Room left: nothing is given up (a block read through may
		 * be read again once the kernel dropped its pages). */
		data = slot_take(cache);
		b = data ? malloc(sizeof(*b)) : NULL;
		if (!b) {
			if (data)
				slot_give(cache, data);
			return NULL;
		}
		cache->nblocks++;
	} else {
		/* Full: first a block a sequential reader has finished with
		 * (it lives on in the kernel's page cache), else the least
		 * recently used that may go. */
		b = recyclable(cache);
		if (!b)
			b = evictable(cache, create == CP_GET_PREFETCH);
		if (!b)
			return NULL;
		/* Reuse the victim's struct and buffer. */
		hash_remove(cache, b);
		lru_unlink(cache, b);
		data = b->data;
	}
	memset(b, 0, sizeof(*b));
	b->key = key;
	b->index = index;
	b->data = data;
	b->want = want;
	b->state = CP_BLOCK_EMPTY;
	b->pins = 1;
	if (create == CP_GET_PREFETCH) {
		b->unread = 1;
		b->created = cp_now();
	}
	b->hnext = cache->buckets[bucket_of(cache, key, index)];
	cache->buckets[bucket_of(cache, key, index)] = b;
	lru_push_head(cache, b);
	if (cache->stats)
		cp_stats_inc(cache->stats, cache_misses);
	return b;
}

struct cp_block *cp_cache_get(struct cp_cache *cache, uint64_t key,
			      uint64_t index, size_t want, int create)
{
	struct cp_block *b;

	pthread_mutex_lock(&cache->lock);
	b = get_locked(cache, key, index, want, create);
	pthread_mutex_unlock(&cache->lock);
	return b;
}

/* Blocks of the run [@first, @first + @n) that are not in the index. */
static int run_missing(struct cp_cache *cache, uint64_t key, uint64_t first,
		       int n)
{
	int i, missing = 0;

	for (i = 0; i < n; i++)
		missing += !find(cache, key, first + (uint64_t)i);
	return missing;
}

/*
 * 1 if @need new blocks can be made at once: free slots, plus blocks
 * nobody holds and nothing is being written into (not counting the run's
 * own blocks, which the caller pins rather than evicts).
 */
static int run_room(struct cp_cache *cache, uint64_t key, uint64_t first,
		    int n, int need)
{
	size_t room = cache->nfree;
	struct cp_block *b;

	for (b = cache->lru_tail; b && room < (size_t)need; b = b->lru_prev) {
		if (b->pins || b->state == CP_BLOCK_FETCHING)
			continue;
		if (b->key == key && b->index - first < (uint64_t)n)
			continue;
		room++;
	}
	return room >= (size_t)need;
}

/* Pins the whole run; only called when run_room() said it fits. */
static void run_take(struct cp_cache *cache, uint64_t key, uint64_t first,
		     int n, int64_t size, struct cp_block **blocks)
{
	int i;

	/* Pin the blocks already there first, so that making the missing
	 * ones cannot evict them. */
	for (i = 0; i < n; i++)
		blocks[i] = find(cache, key, first + (uint64_t)i)
				    ? get_locked(cache, key,
						 first + (uint64_t)i, 0,
						 CP_GET_FIND)
				    : NULL;
	for (i = 0; i < n; i++) {
		uint64_t index = first + (uint64_t)i;
		int64_t left = size - (int64_t)(index * CP_BLOCK_SIZE);
		size_t want = size < 0 || left >= (int64_t)CP_BLOCK_SIZE
				      ? CP_BLOCK_SIZE
				      : (size_t)left;

		if (!blocks[i])
			blocks[i] = get_locked(cache, key, index, want,
					       CP_GET_CREATE);
	}
}

static void waiter_remove(struct cp_cache *cache, struct mem_waiter *w)
{
	struct mem_waiter **p = &cache->waiters, *prev = NULL;

	while (*p != w) {
		prev = *p;
		p = &(*p)->next;
	}
	*p = w->next;
	if (cache->waiters_tail == w)
		cache->waiters_tail = prev;
	/* The next in line may fit now. */
	room_changed(cache);
}

int cp_cache_get_run(struct cp_cache *cache, uint64_t key, uint64_t first,
		     int n, int64_t size, struct cp_block **blocks,
		     double deadline)
{
	struct mem_waiter me = { NULL };
	struct timespec ts;
	int queued = 0, timed_out = 0, ret;

	if (n < 1 || (size_t)n > cache->capacity)
		return -E2BIG;
	cp_deadline_timespec(deadline, &ts);
	pthread_mutex_lock(&cache->lock);
	for (;;) {
		int missing = run_missing(cache, key, first, n);

		/* First come, first served: a read that needs memory does not
		 * overtake one that waits for it (a two-block read would
		 * starve behind a stream of one-block reads otherwise). */
		if (missing == 0 ||
		    ((!cache->waiters || cache->waiters == &me) &&
		     run_room(cache, key, first, n, missing))) {
			run_take(cache, key, first, n, size, blocks);
			ret = 0;
			break;
		}
		if (cache->stopping) {
			ret = -ECANCELED;
			break;
		}
		if (timed_out) {
			ret = -ETIMEDOUT;
			break;
		}
		if (!queued) {
			queued = 1;
			if (cache->waiters_tail)
				cache->waiters_tail->next = &me;
			else
				cache->waiters = &me;
			cache->waiters_tail = &me;
		}
		/* Nothing is pinned while this thread sleeps: a read that
		 * held one slot while waiting for another could deadlock
		 * with reads holding the rest. */
		cp_loop_blocking();
		if (pthread_cond_timedwait(&cache->room, &cache->lock, &ts) ==
		    ETIMEDOUT)
			timed_out = 1; /* one last look, then give up */
	}
	if (queued)
		waiter_remove(cache, &me);
	pthread_mutex_unlock(&cache->lock);
	return ret;
}

int cp_cache_begin_fetch(struct cp_cache *cache, struct cp_block *block)
{
	int start = 0;

	pthread_mutex_lock(&cache->lock);
	if (block->state == CP_BLOCK_EMPTY ||
	    block->state == CP_BLOCK_FAILED) {
		start = block->state == CP_BLOCK_FAILED ? -block->err : 1;
		block->state = CP_BLOCK_FETCHING;
		block->err = 0;
		block->pins++;
		cache->nfetching++;
	}
	pthread_mutex_unlock(&cache->lock);
	return start;
}

void cp_cache_set_want(struct cp_cache *cache, struct cp_block *block,
		       size_t want)
{
	pthread_mutex_lock(&cache->lock);
	if (block->state == CP_BLOCK_FETCHING && want <= CP_BLOCK_SIZE)
		block->want = want;
	pthread_mutex_unlock(&cache->lock);
}

/* Drops one pin; a detached block dies with its last pin. */
static void unpin_locked(struct cp_cache *cache, struct cp_block *b)
{
	if (--b->pins == 0) {
		if (b->detached)
			block_destroy(cache, b);
		else
			room_changed(cache);
	}
}

static void finish(struct cp_cache *cache, struct cp_block *b,
		   enum cp_block_state state, int err)
{
	pthread_mutex_lock(&cache->lock);
	if (state == CP_BLOCK_READY)
		b->unsaved = 1;
	b->state = state;
	b->err = err;
	cache->nfetching--;
	if (b->waiters)
		pthread_cond_broadcast(changed_of(cache, b));
	room_changed(cache); /* no longer FETCHING: evictable */
	unpin_locked(cache, b);
	pthread_mutex_unlock(&cache->lock);
}

void cp_cache_complete(struct cp_cache *cache, struct cp_block *block)
{
	finish(cache, block, CP_BLOCK_READY, 0);
}

/* Moves @b to the cold end of the LRU, with the lock held. */
static void demote_locked(struct cp_cache *cache, struct cp_block *b)
{
	b->consumed = 1;
	b->given = 0;
	lru_unlink(cache, b);
	b->lru_prev = cache->lru_tail;
	if (cache->lru_tail)
		cache->lru_tail->lru_next = b;
	cache->lru_tail = b;
	if (!cache->lru_head)
		cache->lru_head = b;
}

void cp_cache_served(struct cp_cache *cache, struct cp_block **blocks,
		     int n, size_t skip, size_t len)
{
	int i;

	pthread_mutex_lock(&cache->lock);
	for (i = 0; i < n && len > 0; i++) {
		struct cp_block *b = blocks[i];
		size_t part = b->want > skip ? b->want - skip : 0;

		if (part > len)
			part = len;
		len -= part;
		skip = 0;
		if (b->detached)
			continue;
		b->given += part;
		if (b->given >= b->want)
			demote_locked(cache, b);
		else
			b->created = cp_now(); /* the rest is to come */
	}
	pthread_mutex_unlock(&cache->lock);
}

int cp_cache_take_unsaved(struct cp_cache *cache, struct cp_block *block)
{
	int take;

	pthread_mutex_lock(&cache->lock);
	take = block->state == CP_BLOCK_READY && block->unsaved;
	block->unsaved = 0;
	pthread_mutex_unlock(&cache->lock);
	return take;
}

void cp_cache_fail(struct cp_cache *cache, struct cp_block *block, int err,
		   int keep_data, uint64_t tag)
{
	if (!keep_data)
		block->filled = 0;
	pthread_mutex_lock(&cache->lock);
	block->fail_tag = tag;
	pthread_mutex_unlock(&cache->lock);
	finish(cache, block, CP_BLOCK_FAILED, err > 0 ? err : EIO);
}

uint64_t cp_cache_fail_tag(struct cp_cache *cache, struct cp_block *block)
{
	uint64_t tag;

	pthread_mutex_lock(&cache->lock);
	tag = block->fail_tag;
	pthread_mutex_unlock(&cache->lock);
	return tag;
}

int cp_cache_wait(struct cp_cache *cache, struct cp_block *block,
		  double deadline, int *waited)
{
	struct timespec ts;
	int ret = 0, rc;

	if (waited)
		*waited = 0;
	cp_deadline_timespec(deadline, &ts);
	pthread_mutex_lock(&cache->lock);
	while (block->state == CP_BLOCK_FETCHING ||
	       block->state == CP_BLOCK_EMPTY) {
		if (cache->stopping) {
			ret = -ECANCELED;
			break;
		}
		if (waited)
			*waited = 1;
		cp_loop_blocking();
		block->waiters++;
		rc = pthread_cond_timedwait(changed_of(cache, block),
					    &cache->lock, &ts);
		block->waiters--;
		if (rc == ETIMEDOUT &&
		    (block->state == CP_BLOCK_FETCHING ||
		     block->state == CP_BLOCK_EMPTY)) {
			ret = -ETIMEDOUT;
			break;
		}
	}
	if (!ret && block->state == CP_BLOCK_FAILED)
		ret = -block->err;
	pthread_mutex_unlock(&cache->lock);
	return ret;
}

enum cp_block_state cp_cache_state(struct cp_cache *cache,
				   struct cp_block *block, int *err)
{
	enum cp_block_state s;

	pthread_mutex_lock(&cache->lock);
	s = block->state;
	if (err)
		*err = block->err;
	pthread_mutex_unlock(&cache->lock);
	return s;
}

void cp_cache_unpin(struct cp_cache *cache, struct cp_block *block)
{
	pthread_mutex_lock(&cache->lock);
	unpin_locked(cache, block);
	pthread_mutex_unlock(&cache->lock);
}

void cp_cache_drop_key(struct cp_cache *cache, uint64_t key)
{
	struct cp_block *b, *prev;

	pthread_mutex_lock(&cache->lock);
	for (b = cache->lru_tail; b; b = prev) {
		prev = b->lru_prev;
		if (b->key != key || b->detached)
			continue;
		hash_remove(cache, b);
		lru_unlink(cache, b);
		if (b->pins == 0) {
			block_destroy(cache, b);
		} else {
			/* Lives on outside the LRU until its last pin. */
			b->detached = 1;
		}
	}
	pthread_mutex_unlock(&cache->lock);
}

void cp_cache_stop(struct cp_cache *cache)
{
	int i;

	pthread_mutex_lock(&cache->lock);
	cache->stopping = 1;
	for (i = 0; i < CHANGED_BUCKETS; i++)
		pthread_cond_broadcast(&cache->changed[i]);
	pthread_cond_broadcast(&cache->room);
	pthread_mutex_unlock(&cache->lock);
}

size_t cp_cache_fetching(struct cp_cache *cache)
{
	size_t n;

	pthread_mutex_lock(&cache->lock);
	n = cache->nfetching;
	pthread_mutex_unlock(&cache->lock);
	return n;
}
