/*
 * stats.h - live counters: what cpfs did since it was mounted.
 *
 * One struct cp_stats per mount, owned by main() and passed to every
 * module that counts.  Fields are C11 atomics: any thread increments them
 * without a lock (relaxed order; they are statistics, not
 * synchronisation).  Readable while mounted as the extended attribute
 * "user.cpfs.stats" on the mount root, and dumped on SIGUSR1.
 */
#ifndef CP_STATS_H
#define CP_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define CP_STATS_FIELDS(X)                                                     \
	X(api_calls)           /* requests sent to the API */                  \
	X(api_429)             /* 429 answers from the API */                  \
	X(api_errors)          /* other non-2xx API answers */                 \
	X(url_renewals)        /* download URLs fetched again */               \
	X(data_requests)       /* range GETs sent to the data host */          \
	X(data_errors)         /* failed range GETs */                         \
	X(retries)             /* attempts repeated after a fault */           \
	X(bytes_fetched)       /* bytes received from the data host */         \
	X(transfers_in_flight) /* range GETs now running */                    \
	X(cache_hits)          /* blocks found in memory */                    \
	X(cache_misses)        /* blocks that had to be fetched */             \
	X(disk_hits)           /* blocks found in the disk cache */            \
	X(disk_misses)         /* blocks not in the disk cache */              \
	X(meta_hits)           /* lookups answered by persisted metadata */    \
	X(meta_reads)          /* metadata records looked for on the disk */   \
	X(etag_changes)        /* objects seen changing under their id */      \
	X(discovery_calls)     /* API calls made by discovery */               \
	X(discovery_files)     /* files found by the current or last walk */   \
	X(discovery_skipped)   /* malformed objects and answers skipped */     \
	X(discovery_walks)     /* complete walks (this mount) */               \
	X(discovery_last_walk) /* when the last complete walk ended (Epoch) */ \
	X(fuse_lookup)         /* FUSE requests received, by kind: */          \
	X(fuse_getattr)                                                        \
	X(fuse_readdir)                                                        \
	X(fuse_readdirplus)                                                    \
	X(fuse_readdir_entries) /* entries answered by both kinds */           \
	X(view_builds)         /* by-name/, by-page/ listings built */         \
	X(fuse_open)                                                           \
	X(fuse_getxattr)                                                       \
	X(fuse_listxattr)                                                      \
	X(fuse_readlink)                                                       \
	X(fuse_statfs)                                                         \
	X(fuse_forget)         /* inodes forgotten (one per batch entry) */

struct cp_stats {
#define CP_STATS_DECLARE(name) _Atomic uint64_t name;
	CP_STATS_FIELDS(CP_STATS_DECLARE)
#undef CP_STATS_DECLARE
};

#define cp_stats_add(stats, field, n)                                          \
	atomic_fetch_add_explicit(&(stats)->field, (n), memory_order_relaxed)
#define cp_stats_inc(stats, field) cp_stats_add(stats, field, 1)
#define cp_stats_dec(stats, field)                                             \
	atomic_fetch_sub_explicit(&(stats)->field, 1, memory_order_relaxed)

/* Formats every counter as "name=value\n" into @buf (always terminated).
 * Returns the length the full text needs, like snprintf(). */
size_t cp_stats_format(const struct cp_stats *stats, char *buf, size_t len);

#endif
