/*
 * meta.h - per-file metadata that persists across mounts, so stat, ls -l,
 * find and backup walks over files seen before cost no API call.
 *
 * One small file per id under the metadata directory (default
 * $XDG_CACHE_HOME/cpfs/meta, else $HOME/.cache/cpfs/meta, else
 * /var/cache/cpfs/meta for root without HOME; or DIR/meta with
 * -o cache_dir=DIR), written to a temporary name and renamed into
 * place, so two mounts sharing the directory never see a torn record.
 * A record that is truncated, corrupt or of another format version is
 * ignored (as if absent) and rewritten on the next put.  When the
 * directory cannot be created or written (read-only, full disk) the store
 * warns once and carries on as a no-op: cpfs works without it.
 *
 * Thread safety: thread safe; get/put may run concurrently from any
 * thread, except during a bulk load (below).
 */
#ifndef CP_META_H
#define CP_META_H

#include <stdint.h>

#include "valid.h"

struct cp_stats;
struct cp_meta;

struct cp_meta_record {
	char id[CP_ID_BUF];            /* ObjectId, NUL-terminated */
	int64_t size;           /* bytes; -1 unknown */
	int64_t mtime;          /* seconds since the Epoch; -1 unknown */
	int64_t created_at;     /* seconds since the Epoch; -1 unknown */
	char etag[128];         /* as the data host sent it, quotes kept; "" */
	char content_type[128]; /* "" when unknown */
	char name[256];         /* original file name; "" when unknown */
};

/* Fills a record with "unknown" everywhere and @id. */
void cp_meta_record_init(struct cp_meta_record *rec, const char *id);

/*
 * Opens (creating if needed) the store under @cache_dir, or the default
 * when NULL.  Never returns NULL except on out-of-memory: a store that
 * cannot use the disk is returned disabled (get always misses, put does
 * nothing) after one warning.
 */
struct cp_meta *cp_meta_open(const char *cache_dir, struct cp_stats *stats);
void cp_meta_close(struct cp_meta *meta);

/* 0 and *@rec filled, or -ENOENT (absent, unreadable or corrupt). */
int cp_meta_get(struct cp_meta *meta, const char *id,
		struct cp_meta_record *rec);

/*
 * A start-up load (a manifest, a discovery listing) asks for many ids,
 * most of them without a record: between cp_meta_bulk_begin() and
 * cp_meta_bulk_end(), an id that was not in one listing of the directory
 * taken at the beginning misses at once, with no path lookup (a record
 * another mount writes meanwhile is missed: it costs an API call, no
 * more).  Both, and every get and put between them, on one thread while
 * no other uses the store.  When the listing cannot be made, every get
 * looks on the disk as usual.
 */
void cp_meta_bulk_begin(struct cp_meta *meta);
void cp_meta_bulk_end(struct cp_meta *meta);

/* Persists @rec (replacing any older one).  0 or -errno; failures after
 * the first are silent. */
int cp_meta_put(struct cp_meta *meta, const struct cp_meta_record *rec);

#endif
