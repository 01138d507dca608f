/*
 * files.h - the file table: which ids exist in this mount, and what is
 * known about each.
 *
 * Per id: its inode number, size, mtime, ETag, content type and name,
 * the URL lease {url, deadline} (deadline = time of the API's answer +
 * expiresIn - a safety margin), and the state of a lookup in flight.
 * Entries come from the manifest, from the persisted metadata (meta.h)
 * and from lookups; they live until unmount, so a struct cp_file pointer
 * stays valid for the life of the mount (the table only grows: an entry
 * is ~300 bytes).
 *
 * Single flight: one API call per id at a time (concurrent lookups of one
 * id, and concurrent URL renewals, wait for the one in flight), and one
 * resolve (URL + size probe) per id at a time.  A 404 is remembered for
 * neg_ttl seconds.
 *
 * Thread safety: one mutex for the table and every entry's fields; it is
 * never held across network I/O.  Called from FUSE workers; the I/O
 * thread never touches the table.
 */
#ifndef CP_FILES_H
#define CP_FILES_H

#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "fetch.h"

struct cp_config;
struct cp_api;
struct cp_meta;
struct cp_stats;
struct cp_manifest_entry;
struct cp_files;

/* Seconds before expiresIn ends at which a lease is no longer used. */
#define CP_LEASE_MARGIN 30.0

struct cp_file {
	uint64_t ino;             /* constant */
	char id[25];              /* constant */
	/* everything below is protected by the table lock */
	int64_t size;             /* -1: not resolved */
	time_t mtime;             /* 0: unknown */
	int64_t created_at;       /* -1: unknown */
	char etag[CP_ETAG_MAX];   /* "" unknown */
	char content_type[128];
	char name[256];           /* original file name, "" unknown */
	uint64_t gen;             /* bumped when the object changes */
	uint64_t opened_gen;      /* gen at the last open the kernel saw */
	char *url;                /* lease, or NULL */
	double url_deadline;      /* cp_now() scale */
	uint64_t url_gen;         /* bumped with every new URL */
	int calling;              /* an API call for this id in flight */
	int resolving;            /* a resolve in flight */
	int probed;               /* size and ETag seen on the data host */
	int neg_err;              /* remembered error, or 0 */
	double neg_until;
	int listed;               /* shown by readdir */
	struct cp_file *hnext;    /* by-id chain */
};

/* Read-only copy of what a reader needs. */
struct cp_file_view {
	int64_t size;
	uint64_t gen;
	char etag[CP_ETAG_MAX];
};

struct cp_files *cp_files_new(const struct cp_config *cfg,
			      struct cp_api *api, struct cp_meta *meta,
			      struct cp_stats *stats);
void cp_files_free(struct cp_files *files);

/* Adds a manifest entry (listed; size and names known when given). */
void cp_files_add_manifest(struct cp_files *files,
			   const struct cp_manifest_entry *entry);

/* The entry of @id (a valid ObjectId), created (and seeded from the
 * persisted metadata) if absent.  NULL on ENOMEM. */
struct cp_file *cp_files_get(struct cp_files *files, const char *id);

/* The entry of inode @ino, or NULL. */
struct cp_file *cp_files_by_ino(struct cp_files *files, uint64_t ino);

/*
 * Resolve single flight.  Returns 0 when the size is already known (and,
 * with @need_probe, the ETag too, for If-Match: from this mount's probe
 * or the persisted metadata), or another thread resolved it meanwhile;
 * a remembered -errno (404 within neg_ttl); or 1: the caller must resolve
 * now and then call cp_files_end_resolve() exactly once.
 */
int cp_files_begin_resolve(struct cp_files *files, struct cp_file *file,
			   int need_probe, double deadline);

/* Ends a resolve: @err 0 with @info from the probe, or -errno. */
void cp_files_end_resolve(struct cp_files *files, struct cp_file *file,
			  const struct cp_object_info *info, int err);

/*
 * A valid download URL for @file (malloc'd copy, caller frees) in *@url
 * and its lease generation in *@gen.  Reuses the lease while it is valid.
 * @stale_gen: the generation of a URL the data host refused (403), or 0;
 * when the lease is still that one it is renewed.  Blocks on the API
 * (single flight per id).  0 or -ENOENT/-EACCES/-EIO.
 */
int cp_files_lease(struct cp_files *files, struct cp_file *file,
		   uint64_t stale_gen, char **url, uint64_t *gen,
		   double deadline);

/* Without any I/O: 1 if @file's size is known, a remembered -errno
 * (404 within neg_ttl), or 0 (a resolve is needed). */
int cp_files_known(struct cp_files *files, struct cp_file *file);

/* Snapshot for a reader. */
void cp_files_view(struct cp_files *files, struct cp_file *file,
		   struct cp_file_view *view);

/* The object behind @file changed (seen at generation @gen): forget its
 * size and ETag so the next lookup probes again.  Returns 1 if this call
 * bumped the generation (the caller drops cached data), 0 if already
 * done. */
int cp_files_changed(struct cp_files *files, struct cp_file *file,
		     uint64_t gen);

/* At open: 1 if the kernel's cached pages of @file are still good
 * (keep_cache), 0 the first time after the object changed. */
int cp_files_keep_cache(struct cp_files *files, struct cp_file *file);

/* Fills @st (mode, size, times, owner per the config). */
void cp_files_stat(struct cp_files *files, struct cp_file *file,
		   struct stat *st);

/*
 * The @i-th listed file in listing order (i from 0), or NULL past the
 * end.  The listing only grows, so offsets stay valid across calls.
 */
struct cp_file *cp_files_listed(struct cp_files *files, size_t i);

/* Copies a string field of @file under the lock ("name",
 * "content_type", "etag"); returns its length (0 = unknown). */
size_t cp_files_field(struct cp_files *files, struct cp_file *file,
		      const char *field, char *buf, size_t len);

/* Mount time, for files whose mtime is unknown. */
time_t cp_files_mount_time(struct cp_files *files);

#endif
