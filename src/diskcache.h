/*
 * diskcache.h - opt-in cache of file data on disk (-o disk_cache=DIR,
 * disk_cache_size=SIZE), kept across opens and remounts.
 *
 * Blocks are keyed by (id, ETag, block index): a block of one ETag is
 * never served for another.  The files under the directory stay under
 * the cap, and the least recently used blocks are evicted first, even when
 * several mounts (processes) share the directory: they keep one total in
 * a ledger file under a flock, and every write reserves its room before
 * its bytes reach the disk.  A mount that dies leaves nothing the others
 * trip over (the kernel drops its lock; a recount heals the total).
 * Writes go to a temporary file renamed into place, so a crash or a
 * second mount never leaves a torn block that could be served; a damaged
 * block is deleted and rewritten by the next put.  A full or read-only
 * disk disables writes with one warning.
 *
 * Thread safety: thread safe; get/put/drop may run concurrently from any
 * thread.
 */
#ifndef CP_DISKCACHE_H
#define CP_DISKCACHE_H

#include <stddef.h>
#include <stdint.h>

struct cp_stats;
struct cp_diskcache;

/* NULL on out-of-memory only (see meta.h for the disabled mode). */
struct cp_diskcache *cp_diskcache_open(const char *dir, uint64_t cap,
				       struct cp_stats *stats);
void cp_diskcache_close(struct cp_diskcache *dc);

/*
 * Copies block @index of (@id, @etag) into @buf if stored with exactly
 * @len bytes.  0 on a hit, -ENOENT on a miss (@buf may then have been
 * written to).  Counts disk_hits/misses.
 */
int cp_diskcache_get(struct cp_diskcache *dc, const char *id,
		     const char *etag, uint64_t index, void *buf, size_t len);

/* Stores a complete block, evicting older ones to stay under the cap.
 * 0 or -errno (the caller carries on): -EFBIG for a block over the cap,
 * -ENOBUFS when the room is all taken by other writes in progress. */
int cp_diskcache_put(struct cp_diskcache *dc, const char *id,
		     const char *etag, uint64_t index, const void *buf,
		     size_t len);

/* Removes every block of @id whose ETag is not @keep_etag (NULL: all). */
void cp_diskcache_drop(struct cp_diskcache *dc, const char *id,
		       const char *keep_etag);

#endif
