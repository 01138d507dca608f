/*
 * durable.h - the one way cpfs keeps state in files: the metadata store
 * (meta.c) and the disk cache (diskcache.c) both build on it.
 *
 * What it gives them:
 *   - FNV-1a 64, the checksum and name hash of every persisted record;
 *   - the check that an id can name a file;
 *   - whole reads and writes, and little-endian integer fields;
 *   - temp-file-and-rename, so a reader (in this mount or another) sees
 *     the old file or the new one, never a torn one; a foreign directory
 *     or file standing where a record must go is removed, so a damaged
 *     store heals on the next write instead of failing it forever;
 *   - a cross-process lock (flock on a file of the store's own);
 *   - one warning per store, and the verdict on which errors mean the
 *     disk will not take writes any time soon.
 *
 * Persisted bytes are input: callers check magic, version, lengths and
 * checksum before trusting a field, and treat anything that does not check
 * out as absent.
 *
 * Thread safety: every function is thread safe; struct cp_durable_health
 * is atomics only.
 */
#ifndef CP_DURABLE_H
#define CP_DURABLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CP_FNV1A64_INIT 0xcbf29ce484222325ULL

/* FNV-1a 64 of @len bytes, continuing from @h (CP_FNV1A64_INIT to start). */
uint64_t cp_fnv1a64_update(uint64_t h, const void *data, size_t len);
uint64_t cp_fnv1a64(const void *data, size_t len);

/* Longest id cp_durable_id_ok() accepts (an ObjectId's 24 hex digits). */
#define CP_DURABLE_ID_MAX 24

/* Whether @id may name a file: 1 to 24 ASCII letters and digits, which is
 * all an ObjectId can be made of (no '/', no '.', no "..").  NULL: no. */
bool cp_durable_id_ok(const char *id);

/* Reads exactly @len bytes: 0, -EIO when the file ends first, or -errno. */
int cp_durable_read_all(int fd, void *buf, size_t len);

/* Writes exactly @len bytes (retrying short writes and EINTR): 0/-errno. */
int cp_durable_write_all(int fd, const void *buf, size_t len);

/* Little-endian unsigned fields of 1 to 8 @bytes. */
void cp_durable_put_le(unsigned char *p, uint64_t v, int bytes);
uint64_t cp_durable_get_le(const unsigned char *p, int bytes);

/*
 * Creates a unique temporary file "@dir/.@tag.XXXXXX" (mode 0600,
 * O_CLOEXEC), making @dir (mkdir -p) when it is missing.  The last @owned
 * components of @dir belong to the store: a regular file standing where
 * one of them should be a directory is removed (never a link, never
 * anything above them).  Returns the open fd and its path in @tmp, or
 * -errno.
 */
int cp_durable_temp(const char *dir, int owned, const char *tag, char *tmp,
		    size_t len);

/*
 * Closes @fd and renames @tmp over @path.  A directory at @path (left by
 * someone else) is removed first.  On any failure @tmp is removed.
 * 0 or -errno.
 */
int cp_durable_commit(int fd, const char *tmp, const char *path);

/* cp_durable_temp() + write @len bytes + cp_durable_commit(). */
int cp_durable_replace(const char *dir, int owned, const char *tag,
		       const char *path, const void *buf, size_t len);

/* Removes @path whatever it is (file, link, or directory tree, links not
 * followed).  0, or -errno of the first failure; ENOENT counts as done. */
int cp_durable_remove(const char *path);

/*
 * Takes an exclusive flock on @path (created 0600 when missing), waiting
 * for it.  Each call opens the file anew, so the lock excludes other
 * threads of this process as well as other processes; the kernel drops it
 * when the holder dies.  Returns the fd (keep it to read and write the
 * file) or -errno; cp_durable_unlock() releases and closes.
 */
int cp_durable_lock(const char *path);
void cp_durable_unlock(int fd);

/*
 * Whether a store still works, and whether it has said otherwise.  A
 * store starts healthy; cp_durable_failed() prints one warning per store
 * and stops writes for good when the error is permanent.
 */
struct cp_durable_health {
	atomic_bool disabled;  /* no reads, no writes */
	atomic_bool no_writes; /* read-only, full or forbidden: reads only */
	atomic_bool warned;    /* the one warning has been printed */
};

void cp_durable_health_init(struct cp_durable_health *h);

/* Whether -@err from a write means the disk will not take writes any time
 * soon (read-only, full, quota, permissions, a path that cannot be a
 * directory). */
bool cp_durable_err_permanent(int err);

/* Warns once ("@store @dir: @what: <error>; continuing without it") and,
 * when -@err is permanent, stops writes. */
void cp_durable_failed(struct cp_durable_health *h, const char *store,
		       const char *dir, const char *what, int err);

/* Warns once as above and disables the store entirely. */
void cp_durable_disable(struct cp_durable_health *h, const char *store,
			const char *dir, const char *what, int err);

static inline bool cp_durable_can_read(struct cp_durable_health *h)
{
	return !atomic_load(&h->disabled);
}

static inline bool cp_durable_can_write(struct cp_durable_health *h)
{
	return !atomic_load(&h->disabled) && !atomic_load(&h->no_writes);
}

#endif
