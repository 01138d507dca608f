/*
 * cache.h - the block cache: file data in memory, in fixed 1 MiB blocks.
 *
 * Blocks are keyed by (file key, block index) and live in one global LRU
 * bounded by cache_size.  Memory is taken when a block is created (before
 * any transfer starts), never while data arrives; buffers of evicted
 * blocks are reused, so the daemon's resident data stays within
 * cache_size however many files or readers there are.
 *
 * A block's life: EMPTY -> FETCHING (one transfer owns it) -> READY, or
 * FAILED (err says why; the bytes already received stay valid, so a
 * retry resumes after them).  Anyone who wants a block that another
 * thread is fetching waits for it instead of fetching it again.
 *
 * Pins: every pointer handed out is pinned; a pinned block is never
 * evicted or reused.  Readers pin while they copy out, a transfer pins
 * the blocks it fills.  Whoever got a pin drops it with cp_cache_unpin().
 *
 * Thread safety: one mutex (cache->lock) protects the index, the LRU,
 * states and pins; it is a leaf (no other lock is taken under it) and is
 * never held across I/O.  The data (and `filled`) of a FETCHING block
 * are written without the lock by whoever made it FETCHING with
 * cp_cache_begin_fetch(): the I/O thread running its transfer, or a FUSE
 * worker filling it from the disk cache.  They become visible to others
 * when the state changes under the lock (cp_cache_complete/fail).
 */
#ifndef CP_CACHE_H
#define CP_CACHE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define CP_BLOCK_SHIFT 20
#define CP_BLOCK_SIZE ((size_t)1 << CP_BLOCK_SHIFT)

struct cp_stats;

enum cp_block_state {
	CP_BLOCK_EMPTY,
	CP_BLOCK_FETCHING,
	CP_BLOCK_READY,
	CP_BLOCK_FAILED,
};

struct cp_block {
	uint64_t key;      /* file key (inode number) */
	uint64_t index;    /* offset / CP_BLOCK_SIZE */
	char *data;        /* CP_BLOCK_SIZE bytes, owned by the cache */
	size_t want;       /* bytes in the complete block (last one shorter) */
	size_t filled;     /* bytes of data valid from the start */
	enum cp_block_state state; /* protected by lock */
	int err;           /* positive errno when FAILED; protected by lock */
	unsigned pins;     /* protected by lock */
	unsigned waiters;  /* threads in cp_cache_wait() on it; lock */
	int detached;      /* dropped from the index; freed on last unpin */
	int unsaved;       /* fetched from the network, not yet offered to
			    * the disk cache; protected by lock */
	uint64_t fail_tag; /* lease generation of the failed transfer;
			    * protected by lock */
	int unread;        /* prefetched, not read yet; protected by lock */
	int consumed;      /* demoted and not asked for since; lock */
	size_t given;      /* bytes sequential reads handed out since it
			    * was made or last demoted; lock */
	double created;    /* when it was prefetched, or last read in part
			    * (cp_now()); protected by lock */
	struct cp_block *hnext;             /* hash chain */
	struct cp_block *lru_prev, *lru_next; /* head = most recent */
};

struct cp_cache;

/* Room for @bytes / CP_BLOCK_SIZE blocks (at least 2).  NULL on ENOMEM.
 * @stats may be NULL. */
struct cp_cache *cp_cache_new(uint64_t bytes, struct cp_stats *stats);
void cp_cache_free(struct cp_cache *cache);

/* Number of blocks the cache may hold. */
size_t cp_cache_capacity(const struct cp_cache *cache);

/* @create for cp_cache_get(): */
#define CP_GET_FIND 0     /* only an existing block */
#define CP_GET_CREATE 1   /* for a read: may evict any unpinned block,
			   * one prefetched and not read yet, or read in
			   * part, only when nothing else may go */
#define CP_GET_PREFETCH 2 /* for a prefetch: never evicts a block that
			   * another prefetch brought in recently and no
			   * reader has asked for yet, nor one a reader
			   * read in part recently, and makes nothing
			   * while reads wait for memory */

/*
 * Finds block (@key, @index), pinned.  When absent and @create is set,
 * makes an EMPTY block of @want bytes, evicting the least recently used
 * unpinned block that is not being fetched (as @create allows); returns
 * NULL when no block
 * may be evicted (memory is short: the caller shrinks its ambition or
 * waits).  Counts cache hits (block READY) and misses.
 */
struct cp_block *cp_cache_get(struct cp_cache *cache, uint64_t key,
			      uint64_t index, size_t want, int create);

/*
 * For a read: pins the @n consecutive blocks [@first, @first + @n) of
 * @key into @blocks, all at once, creating the missing ones EMPTY (want:
 * CP_BLOCK_SIZE, the last block of an object of @size shorter; @size -1
 * when not known yet).  Waits up to @deadline for memory, holding no pin
 * while it waits (a read that held one slot while waiting for another
 * could deadlock with reads holding the rest), in first-come order
 * behind other reads waiting for memory.  So any number of readers
 * makes progress with any cache of at least @n blocks.  0, -E2BIG (@n
 * exceeds the capacity), -ETIMEDOUT or -ECANCELED (cp_cache_stop()).
 */
int cp_cache_get_run(struct cp_cache *cache, uint64_t key, uint64_t first,
		     int n, int64_t size, struct cp_block **blocks,
		     double deadline);

/*
 * If @block is EMPTY or FAILED, marks it FETCHING, takes a pin for the
 * transfer and returns 1 (it was EMPTY) or -err (it was FAILED with err:
 * this is a retry): the caller must now start a transfer that ends in
 * cp_cache_complete() or cp_cache_fail().  Returns 0 otherwise.
 */
int cp_cache_begin_fetch(struct cp_cache *cache, struct cp_block *block);

/* Transfer side: sets the size of a block whose size was unknown
 * (probe); only while FETCHING. */
void cp_cache_set_want(struct cp_cache *cache, struct cp_block *block,
		       size_t want);

/* Transfer side: the block is complete (filled == want).  Drops the
 * transfer's pin and wakes waiters. */
void cp_cache_complete(struct cp_cache *cache, struct cp_block *block);

/* Transfer side: the transfer ended before the block was complete.
 * @keep_data: the bytes received are trustworthy and a retry may resume
 * after them; else they are discarded.  @tag: the lease generation of
 * the URL used.  Drops the pin, wakes waiters. */
void cp_cache_fail(struct cp_cache *cache, struct cp_block *block, int err,
		   int keep_data, uint64_t tag);

/* The @tag of the block's last failure. */
uint64_t cp_cache_fail_tag(struct cp_cache *cache, struct cp_block *block);

/*
 * Waits until @block is READY or FAILED, or until @deadline (cp_now()
 * scale).  Returns 0 when READY, -err when FAILED, -ETIMEDOUT.  Sets
 * *@waited when it had to sleep (may be NULL).
 */
int cp_cache_wait(struct cp_cache *cache, struct cp_block *block,
		  double deadline, int *waited);

/* Current state (a snapshot). */
enum cp_block_state cp_cache_state(struct cp_cache *cache,
				   struct cp_block *block, int *err);

void cp_cache_unpin(struct cp_cache *cache, struct cp_block *block);

/*
 * A sequential read handed @len bytes out of the @n consecutive pinned
 * @blocks, from offset @skip in the first.  A block all of whose bytes
 * were handed out (by this and earlier reads, in any order) goes to the
 * cold end of the LRU, first to be reused: the kernel's page cache keeps
 * its data.  Counted by bytes, not by where a read ends: the kernel's
 * reads straddle blocks (1 MiB reads from 512 KiB on) and arrive out of
 * order, and a block must not be reused while a read of its first half
 * is still to come.
 */
void cp_cache_served(struct cp_cache *cache, struct cp_block **blocks,
		     int n, size_t skip, size_t len);

/* Returns 1 exactly once for a READY block that came from the network
 * (the caller then offers it to the disk cache), else 0. */
int cp_cache_take_unsaved(struct cp_cache *cache, struct cp_block *block);

/* Forgets every block of @key (the object changed).  Pinned blocks are
 * detached and freed when their last pin goes. */
void cp_cache_drop_key(struct cp_cache *cache, uint64_t key);

/* Shutdown: every wait returns -ECANCELED from now on. */
void cp_cache_stop(struct cp_cache *cache);

/* Blocks now FETCHING (all files). */
size_t cp_cache_fetching(struct cp_cache *cache);

#endif
