/*
 * files.h - the file table: which ids exist in this mount, and what is
 * known about each.
 *
 * Per id: its inode number (from the id, see ino.h), size, times, ETag,
 * content type and name, what discovery knows (purpose, public URL,
 * width, height), the URL lease, and the state of a lookup in flight.
 * Entries come from the manifest, from discovery, from the persisted
 * metadata (meta.h) and from lookups; they live until unmount, so a
 * struct cp_file pointer stays valid for the life of the mount (the
 * table only grows: an entry is ~350 bytes).
 *
 * Two kinds of lease, and only this module tells them apart: a presigned
 * URL from the API ({url, deadline}, deadline = time of the API's answer
 * + expiresIn - a safety margin, renewed through the API), or a file's
 * public URL (images: never expires, costs no API call).  A file with a
 * public URL is always read from it.
 *
 * Times: mtime (and ctime) is createdAt when known; else the first time
 * the file was shown with: the first Last-Modified the data host sent
 * (a file whose size is unknown is probed before it is shown), or, for a
 * file shown with a known size before any probe, the creation time in
 * its ObjectId.  That time is persisted and replaced only when the
 * object itself changes (a new ETag), so backup tools see it unchanged.
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
#include "ino.h"
#include "valid.h"

struct cp_config;
struct cp_api;
struct cp_meta;
struct cp_stats;
struct cp_files;

/* Seconds before expiresIn ends at which a lease is no longer used. */
#define CP_LEASE_MARGIN 30.0

enum cp_purpose {
	CP_PURPOSE_UNKNOWN = 0,
	CP_PURPOSE_FILE,          /* private: read through /download */
	CP_PURPOSE_IMAGE,         /* public at its URL */
};

struct cp_file {
	uint64_t ino;             /* constant */
	char id[CP_ID_BUF];       /* constant */
	/* everything below is protected by the table lock */
	int64_t size;             /* -1: not resolved */
	time_t mtime;             /* first Last-Modified seen; 0: unknown */
	int64_t created_at;       /* -1: unknown */
	/* Strings malloc'd to their length (an entry of a 100 000-file
	 * listing stays small); NULL: unknown. */
	char *etag;               /* as the data host sent it */
	char *content_type;
	char *name;               /* original file name */
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
	int purpose;              /* enum cp_purpose */
	char *public_url;         /* public URL (images), or NULL */
	uint64_t public_gen;      /* lease generation of public_url */
	int32_t width, height;    /* -1: unknown */
	struct cp_file *hnext;    /* by-id chain */
	struct cp_file *inext;    /* by-ino chain */
};

/* What a manifest record or discovery says about a file; NULL and -1
 * mean "not said".  Strings are copied. */
struct cp_file_facts {
	const char *id;           /* a valid ObjectId */
	int purpose;              /* enum cp_purpose */
	const char *public_url;   /* checked by the caller (cp_url_check) */
	const char *name;
	const char *content_type;
	int64_t size;
	int64_t created_at;
	int32_t width, height;
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

/* Sets @facts to "nothing said" for @id. */
void cp_file_facts_init(struct cp_file_facts *facts, const char *id);

/*
 * Adds (or updates) the file @facts->id and lists it.  A size stands
 * until a probe says otherwise; a new public URL replaces an older one.
 * Returns the entry, or NULL on ENOMEM.
 */
struct cp_file *cp_files_add_facts(struct cp_files *files,
				   const struct cp_file_facts *facts);

/* Tests only, before any file is added: hash bits of inode numbers
 * (a tiny mask forces collisions). */
void cp_files_set_ino_mask(struct cp_files *files, uint64_t mask);

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
 * and its lease generation in *@gen.  A public URL when the file has one
 * (no API call); else the presigned lease, reused while it is valid.
 * @stale_gen: the generation of a URL the data host refused (403), or 0;
 * when the lease is still that one it is renewed (a refused public URL
 * cannot be: -EIO).  Blocks on the API (single flight per id); when the
 * API refuses the id (400/404) and a public URL is known by then, that
 * URL is the answer.  0 or -ENOENT/-EACCES/-EIO.
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

/* A number that changes whenever a file is listed or gets its name (what
 * by-name/ shows): equal numbers, same names. */
uint64_t cp_files_names_gen(struct cp_files *files);

/* Copies a field of @file under the lock as text: "name",
 * "content_type", "etag", "purpose" ("image"/"file"), "url" (public
 * URL), "width", "height", "created_at" (ISO 8601).  Returns its length
 * (0 = unknown). */
size_t cp_files_field(struct cp_files *files, struct cp_file *file,
		      const char *field, char *buf, size_t len);

/* Mount time, for files whose mtime is unknown. */
time_t cp_files_mount_time(struct cp_files *files);

#endif
