/*
 * diskcache.c - opt-in on-disk cache of file data blocks, with one cap
 * for every mount that shares the directory.
 *
 * Owns the directory given with -o disk_cache=DIR, laid out as
 *
 *	DIR/.cpfs-usage                  the ledger (lock and shared total)
 *	DIR/<id>/<etag hash>/<index>     one block
 *
 * where <etag hash> is the FNV-1a 64 hash of the ETag in 16 hex digits and
 * <index> the block number in decimal.  Each block file is a 40-byte
 * header, the ETag, then the data:
 *
 *	magic "CPFSBLK\n" | u32 version | u32 etag length | u64 index |
 *	u64 data length | u64 FNV-1a 64 of (header[0..32) + etag + data)
 *
 * (integers little-endian).  A block is served only when its ETag, index
 * and length are exactly the ones asked for, the file size matches and
 * the checksum verifies; a damaged block (or anything else standing in its
 * place) is deleted, and the next put of it rewrites it.
 *
 * One cap across mounts.  The ledger is 40 bytes,
 *
 *	magic "CPFSUSE\n" | u32 version | u32 0 | u64 total | u64 0 |
 *	u64 FNV-1a 64 of bytes [0..32)
 *
 * and every change to the files under DIR (a write reserving room, a
 * block renamed into place, an eviction, a drop, a damaged block deleted)
 * is made with an exclusive flock on it held (durable.c), in the same
 * critical section that updates "total".  total is the apparent size of
 * every block file plus every temporary file being written: a put
 * reserves its bytes (evicting first), creates its temporary file at
 * full size, writes it outside the lock, and renames it into place under
 * the lock.  So the files under DIR never add up to more than the cap,
 * whichever mount wrote them.  A writer holds a shared flock on its
 * temporary file; a temporary file nobody holds is a dead writer's.
 *
 * Crashes and damage.  The kernel drops a dead mount's flocks.  The total
 * is raised before files grow and lowered only after they shrink, so a
 * mount that dies between the two leaves it too high (the cap still
 * holds) and never too low.  A rescan, under the lock, recounts the
 * files, deletes dead writers' temporary files and rewrites the ledger:
 * it runs at open, whenever the ledger is missing or does not check out,
 * and when a mount must evict but knows of no block.
 *
 * Which block goes.  Each mount keeps an index of the blocks it knows
 * (those found by its last scan, and those it wrote or read since): a hash
 * table for lookups and a list in least-recently-used order.  A get that
 * hits moves its block to the recent end and stamps the file's atime, so
 * the order survives a remount and other mounts see the use.  Eviction
 * takes the oldest block of the index, but a block whose file another
 * mount used since (a later atime or mtime) moves to the recent end
 * instead, and one already gone is forgotten.  Mounts sharing DIR should
 * be given the same disk_cache_size; each keeps the shared total under
 * its own.
 *
 * Thread safety: any thread.  The flock serialises this mount's threads
 * as well as other mounts (each critical section opens the ledger anew);
 * it is held across the metadata operations it covers (create, rename,
 * unlink, stat) but never across writing block data or the network.
 * dc->lock guards the index only, is taken inside the flock and is a leaf:
 * no file I/O under it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "diskcache.h"
#include "durable.h"
#include "log.h"
#include "stats.h"
#include "util.h"

#define STORE "disk cache"
#define DC_MAGIC "CPFSBLK\n"
#define DC_VERSION 1
#define DC_HEADER 40
#define DC_ETAG_MAX 1024
#define DC_LEDGER ".cpfs-usage"
#define DC_LEDGER_MAGIC "CPFSUSE\n"
#define DC_LEDGER_VERSION 1
#define DC_LEDGER_SIZE 40
#define DC_STALE_TMP 3600 /* seconds: a temp file this old is dead anyway */

struct block {
	struct block *hnext;	   /* hash chain */
	struct block *prev, *next; /* LRU list: head is the oldest */
	uint64_t etag_hash;
	uint64_t index;
	int64_t used_ns; /* last use known to this mount, CLOCK_REALTIME */
	uint64_t spared_in; /* the eviction pass that last spared it */
	char id[CP_DURABLE_ID_MAX + 1];
};

struct cp_diskcache {
	char dir[PATH_MAX];
	char ledger_path[PATH_MAX];
	uint64_t cap;
	struct cp_stats *stats; /* may be NULL */
	struct cp_durable_health health;

	pthread_mutex_t lock;
	struct block **table; /* protected by lock */
	size_t nbuckets;      /* protected by lock */
	size_t nblocks;	      /* protected by lock */
	struct block *oldest; /* protected by lock */
	struct block *newest; /* protected by lock */
	uint64_t evict_pass;  /* protected by lock */
};

/* For futimens/utimensat: the atime of a block records its last use. */
static const struct timespec touch_atime[2] = {
	{.tv_nsec = UTIME_NOW},
	{.tv_nsec = UTIME_OMIT},
};

/* A critical section on the ledger: the flocked fd and the total read. */
struct ledger {
	int fd;
	uint64_t total;
	bool rescanned; /* this section has rescanned already */
	bool dirty;	/* total changed since it was read */
};

static int64_t ts_ns(struct timespec ts)
{
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts_ns(ts);
}

/* The last use of a block file another mount could have recorded. */
static int64_t file_used_ns(const struct stat *st)
{
	return CP_MAX(ts_ns(st->st_atim), ts_ns(st->st_mtim));
}

/* "DIR/<id>", "DIR/<id>/<hash>" or "DIR/<id>/<hash>/<index>" by @depth. */
static int block_path(const struct cp_diskcache *dc, char *out, size_t len,
		      const char *id, uint64_t etag_hash, uint64_t index,
		      int depth)
{
	int n;

	if (depth == 1)
		n = snprintf(out, len, "%s/%s", dc->dir, id);
	else if (depth == 2)
		n = snprintf(out, len, "%s/%s/%016" PRIx64, dc->dir, id,
			     etag_hash);
	else
		n = snprintf(out, len, "%s/%s/%016" PRIx64 "/%" PRIu64, dc->dir,
			     id, etag_hash, index);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* ---- the index (all of these run with dc->lock held) ---- */

static size_t bucket_of(const struct cp_diskcache *dc, const char *id,
			uint64_t etag_hash, uint64_t index)
{
	uint64_t h = cp_fnv1a64(id, strlen(id));

	h = cp_fnv1a64_update(h, &etag_hash, sizeof(etag_hash));
	h = cp_fnv1a64_update(h, &index, sizeof(index));
	return (size_t)(h & (dc->nbuckets - 1));
}

static struct block *index_find(struct cp_diskcache *dc, const char *id,
				uint64_t etag_hash, uint64_t index)
{
	struct block *b = dc->table[bucket_of(dc, id, etag_hash, index)];

	for (; b; b = b->hnext)
		if (b->index == index && b->etag_hash == etag_hash &&
		    !strcmp(b->id, id))
			return b;
	return NULL;
}

static void lru_unlink(struct cp_diskcache *dc, struct block *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		dc->oldest = b->next;
	if (b->next)
		b->next->prev = b->prev;
	else
		dc->newest = b->prev;
	b->prev = b->next = NULL;
}

static void lru_append(struct cp_diskcache *dc, struct block *b)
{
	b->prev = dc->newest;
	b->next = NULL;
	if (dc->newest)
		dc->newest->next = b;
	else
		dc->oldest = b;
	dc->newest = b;
}

/* Doubles the table when it gets crowded; on ENOMEM chains just grow. */
static void index_grow(struct cp_diskcache *dc)
{
	size_t i, old = dc->nbuckets;
	struct block **t, **old_table = dc->table;

	if (dc->nblocks < old)
		return;
	t = calloc(old * 2, sizeof(*t));
	if (!t)
		return;
	dc->table = t;
	dc->nbuckets = old * 2;
	for (i = 0; i < old; i++) {
		struct block *b = old_table[i], *next;

		for (; b; b = next) {
			size_t k = bucket_of(dc, b->id, b->etag_hash, b->index);

			next = b->hnext;
			b->hnext = t[k];
			t[k] = b;
		}
	}
	free(old_table);
}

static void index_insert(struct cp_diskcache *dc, struct block *b)
{
	size_t k;

	index_grow(dc);
	k = bucket_of(dc, b->id, b->etag_hash, b->index);
	b->hnext = dc->table[k];
	dc->table[k] = b;
	lru_append(dc, b);
	dc->nblocks++;
}

static void index_remove(struct cp_diskcache *dc, struct block *b)
{
	struct block **pp =
		&dc->table[bucket_of(dc, b->id, b->etag_hash, b->index)];

	while (*pp && *pp != b)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = b->hnext;
	b->hnext = NULL;
	lru_unlink(dc, b);
	dc->nblocks--;
}

static void index_clear(struct cp_diskcache *dc)
{
	struct block *b, *next;

	for (b = dc->oldest; b; b = next) {
		next = b->next;
		free(b);
	}
	memset(dc->table, 0, dc->nbuckets * sizeof(*dc->table));
	dc->oldest = dc->newest = NULL;
	dc->nblocks = 0;
}

/* ---- index operations that take dc->lock themselves ---- */

static struct block *block_new(const char *id, uint64_t etag_hash,
			       uint64_t index, int64_t used_ns)
{
	struct block *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	memcpy(b->id, id, strlen(id) + 1); /* cp_durable_id_ok() */
	b->etag_hash = etag_hash;
	b->index = index;
	b->used_ns = used_ns;
	return b;
}

/* Records a use of (id, etag_hash, index) at @used_ns: most recent. */
static void index_note(struct cp_diskcache *dc, const char *id,
		       uint64_t etag_hash, uint64_t index, int64_t used_ns)
{
	struct block *fresh = block_new(id, etag_hash, index, used_ns);
	struct block *b;

	pthread_mutex_lock(&dc->lock);
	b = index_find(dc, id, etag_hash, index);
	if (b) {
		lru_unlink(dc, b);
		lru_append(dc, b);
		b->used_ns = CP_MAX(b->used_ns, used_ns);
	} else if (fresh) {
		index_insert(dc, fresh); /* unindexed on ENOMEM: only LRU
					  * order suffers */
		fresh = NULL;
	}
	pthread_mutex_unlock(&dc->lock);
	free(fresh);
}

/* Puts back a block taken off the index, unless it was noted again. */
static void index_put_back(struct cp_diskcache *dc, struct block *v)
{
	pthread_mutex_lock(&dc->lock);
	if (index_find(dc, v->id, v->etag_hash, v->index)) {
		pthread_mutex_unlock(&dc->lock);
		free(v);
		return;
	}
	index_insert(dc, v);
	pthread_mutex_unlock(&dc->lock);
}

static void index_forget(struct cp_diskcache *dc, const char *id,
			 uint64_t etag_hash, uint64_t index)
{
	struct block *b;

	pthread_mutex_lock(&dc->lock);
	b = index_find(dc, id, etag_hash, index);
	if (b)
		index_remove(dc, b);
	pthread_mutex_unlock(&dc->lock);
	free(b);
}

/* Takes the least recently used block off the index; NULL when empty. */
static struct block *index_take_oldest(struct cp_diskcache *dc)
{
	struct block *v;

	pthread_mutex_lock(&dc->lock);
	v = dc->oldest;
	if (v)
		index_remove(dc, v);
	pthread_mutex_unlock(&dc->lock);
	return v;
}

/* ---- scanning the directory (runs with the ledger locked) ---- */

static bool all_hex(const char *s, size_t n)
{
	size_t i;

	if (strlen(s) != n)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool parse_index(const char *s, uint64_t *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return !errno && !*end;
}

struct scan {
	struct block **list; /* oldest use first once sorted */
	size_t n, cap;
	uint64_t total; /* bytes of blocks and live temporary files */
};

static int by_use(const void *a, const void *b)
{
	int64_t x = (*(struct block *const *)a)->used_ns;
	int64_t y = (*(struct block *const *)b)->used_ns;

	return x < y ? -1 : x > y;
}

/* Whether a writer still holds the temporary file @name (in @dfd). */
static bool temp_alive(int dfd, const char *name, const struct stat *st)
{
	int fd, alive;

	if (time(NULL) - st->st_mtime > DC_STALE_TMP)
		return false;
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	/* Writers hold LOCK_SH until the rename; a file system without
	 * flock keeps temp files until they are DC_STALE_TMP old. */
	alive = flock(fd, LOCK_EX | LOCK_NB) < 0;
	close(fd);
	return alive;
}

/* Adds one DIR/<id>/<hash> directory to @s. 0 or -ENOMEM. */
static int scan_etag_dir(const char *id, uint64_t etag_hash, int dfd,
			 struct scan *s)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	int err = 0;

	if (!d) {
		close(dfd);
		return 0;
	}
	while (!err && (de = readdir(d))) {
		struct stat st;
		uint64_t index;
		struct block *b;

		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (!strncmp(de->d_name, ".tmp", 4) && S_ISREG(st.st_mode)) {
			if (temp_alive(dirfd(d), de->d_name, &st))
				s->total += (uint64_t)st.st_size;
			else
				unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if (!S_ISREG(st.st_mode) || !parse_index(de->d_name, &index))
			continue;
		if (s->n == s->cap) {
			size_t ncap = s->cap ? s->cap * 2 : 256;
			struct block **l = realloc(s->list, ncap * sizeof(*l));

			if (!l) {
				err = -ENOMEM;
				break;
			}
			s->list = l;
			s->cap = ncap;
		}
		b = block_new(id, etag_hash, index, file_used_ns(&st));
		if (!b) {
			err = -ENOMEM;
			break;
		}
		s->list[s->n++] = b;
		s->total += (uint64_t)st.st_size;
	}
	closedir(d);
	return err;
}

/* Adds DIR/<id> to @s. */
static int scan_id_dir(DIR *top, const char *id, struct scan *s)
{
	struct dirent *he;
	DIR *idd;
	int fd, err = 0;

	fd = openat(dirfd(top), id,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	idd = fdopendir(fd);
	if (!idd) {
		close(fd);
		return 0;
	}
	while (!err && (he = readdir(idd))) {
		int hfd;

		if (!all_hex(he->d_name, 16))
			continue;
		hfd = openat(dirfd(idd), he->d_name,
			     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (hfd >= 0)
			err = scan_etag_dir(id, strtoull(he->d_name, NULL, 16),
					    hfd, s);
	}
	closedir(idd);
	return err;
}

/* Lists every block under DIR, oldest use first, and counts the bytes. */
static int scan_dir(struct cp_diskcache *dc, struct scan *s)
{
	struct dirent *de;
	DIR *top;
	int err = 0;

	memset(s, 0, sizeof(*s));
	top = opendir(dc->dir);
	if (!top)
		return -errno;
	while (!err && (de = readdir(top)))
		if (cp_durable_id_ok(de->d_name))
			err = scan_id_dir(top, de->d_name, s);
	closedir(top);
	if (s->n)
		qsort(s->list, s->n, sizeof(*s->list), by_use);
	return err;
}

static void scan_free(struct scan *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->list[i]);
	free(s->list);
}

/* ---- the ledger: one total for every mount sharing DIR ---- */

static void ledger_encode(unsigned char *rec, uint64_t total)
{
	memset(rec, 0, DC_LEDGER_SIZE);
	memcpy(rec, DC_LEDGER_MAGIC, 8);
	cp_durable_put_le(rec + 8, DC_LEDGER_VERSION, 4);
	cp_durable_put_le(rec + 16, total, 8);
	cp_durable_put_le(rec + 32, cp_fnv1a64(rec, 32), 8);
}

static bool ledger_decode(const unsigned char *rec, uint64_t *total)
{
	if (memcmp(rec, DC_LEDGER_MAGIC, 8) ||
	    cp_durable_get_le(rec + 8, 4) != DC_LEDGER_VERSION ||
	    cp_durable_get_le(rec + 32, 8) != cp_fnv1a64(rec, 32))
		return false;
	*total = cp_durable_get_le(rec + 16, 8);
	return true;
}

static int ledger_store(struct ledger *lg)
{
	unsigned char rec[DC_LEDGER_SIZE];
	ssize_t n;

	ledger_encode(rec, lg->total);
	do
		n = pwrite(lg->fd, rec, sizeof(rec), 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(rec))
		return n < 0 ? -errno : -EIO; /* the next reader rescans */
	lg->dirty = false;
	return 0;
}

/* Recounts DIR and rebuilds this mount's index from what is there. */
static int rescan(struct cp_diskcache *dc, struct ledger *lg)
{
	struct scan s;
	size_t i;
	int err = scan_dir(dc, &s);

	if (err) {
		scan_free(&s);
		return err;
	}
	pthread_mutex_lock(&dc->lock);
	index_clear(dc);
	for (i = 0; i < s.n; i++)
		index_insert(dc, s.list[i]);
	pthread_mutex_unlock(&dc->lock);
	free(s.list);
	if (lg->total != s.total)
		cp_dbg("disk cache %s: recounted %" PRIu64 " bytes (ledger "
		       "said %" PRIu64 ")",
		       dc->dir, s.total, lg->total);
	lg->total = s.total;
	lg->rescanned = true;
	return ledger_store(lg);
}

static void ledger_unlock(struct ledger *lg)
{
	if (lg->dirty)
		ledger_store(lg);
	cp_durable_unlock(lg->fd);
}

/*
 * Starts a critical section: locks the ledger and reads the total, or
 * recounts it when @recount, or when the ledger is missing or damaged.
 * 0 or -errno (then nothing is held).
 */
static int ledger_lock(struct cp_diskcache *dc, struct ledger *lg,
		       bool recount)
{
	unsigned char rec[DC_LEDGER_SIZE];
	ssize_t n;
	int err;

	memset(lg, 0, sizeof(*lg));
	lg->fd = cp_durable_lock(dc->ledger_path);
	if (lg->fd == -EISDIR || lg->fd == -ELOOP) {
		/* a directory or link where the ledger belongs */
		cp_durable_remove(dc->ledger_path);
		lg->fd = cp_durable_lock(dc->ledger_path);
	}
	if (lg->fd < 0)
		return lg->fd;
	do
		n = pread(lg->fd, rec, sizeof(rec), 0);
	while (n < 0 && errno == EINTR);
	if (!recount && n == (ssize_t)sizeof(rec) &&
	    ledger_decode(rec, &lg->total))
		return 0;
	if (!recount)
		cp_dbg("disk cache %s: ledger %s; recounting", dc->dir,
		       n == 0 ? "missing" : "damaged");
	err = rescan(dc, lg);
	if (err) {
		cp_durable_unlock(lg->fd);
		lg->fd = -1;
	}
	return err;
}

/* Removes directories DIR/<id>/<hash> and DIR/<id> once empty. */
static void remove_empty_dirs(struct cp_diskcache *dc, const char *id,
			      uint64_t etag_hash)
{
	char path[PATH_MAX];

	/* rmdir fails harmlessly while other blocks remain. */
	if (!block_path(dc, path, sizeof(path), id, etag_hash, 0, 2) &&
	    !rmdir(path) && !block_path(dc, path, sizeof(path), id, 0, 0, 1))
		rmdir(path);
}

/* Removes the file (or whatever stands) at @path; the total loses what
 * it counted of it.  Runs with the ledger locked. */
static void remove_counted(struct ledger *lg, const char *path,
			   const struct stat *st)
{
	if (cp_durable_remove(path))
		return;
	if (S_ISREG(st->st_mode)) {
		lg->total -= CP_MIN(lg->total, (uint64_t)st->st_size);
		lg->dirty = true;
	}
}

/*
 * Evicts @v, taken off the index; unless another mount used its file
 * after we last did: then it goes back to the recent end, marked as
 * spared in eviction pass @pass.
 */
static void evict_one(struct cp_diskcache *dc, struct ledger *lg,
		      struct block *v, uint64_t pass, bool may_spare)
{
	char path[PATH_MAX];
	struct stat st;

	if (block_path(dc, path, sizeof(path), v->id, v->etag_hash, v->index,
		       3) ||
	    lstat(path, &st) < 0) {
		free(v); /* gone already: another mount evicted it */
		return;
	}
	if (may_spare && file_used_ns(&st) > v->used_ns) {
		v->used_ns = file_used_ns(&st);
		v->spared_in = pass;
		index_put_back(dc, v);
		return;
	}
	remove_counted(lg, path, &st);
	remove_empty_dirs(dc, v->id, v->etag_hash);
	free(v);
}

/*
 * Evicts until @need more bytes fit under the cap.  When this mount's
 * index runs out, or holds only blocks other mounts are using, it is
 * rebuilt from the disk once (learning other mounts' blocks, in the order
 * of their last use), then blocks go in that order.  0, or -ENOBUFS when
 * nothing is left to evict (the rest is being written).
 */
static int make_room(struct cp_diskcache *dc, struct ledger *lg,
		     uint64_t need)
{
	uint64_t pass;

	pthread_mutex_lock(&dc->lock);
	pass = ++dc->evict_pass;
	pthread_mutex_unlock(&dc->lock);
	while (lg->total + need > dc->cap) {
		struct block *v = index_take_oldest(dc);
		int err;

		if (v && v->spared_in == pass && !lg->rescanned) {
			index_put_back(dc, v); /* every block left is in use */
			v = NULL;
		}
		if (!v) {
			if (lg->rescanned)
				return -ENOBUFS;
			err = rescan(dc, lg); /* learn other mounts' blocks */
			if (err)
				return err;
			continue;
		}
		/* after a rescan the order is the disk's: no more sparing */
		evict_one(dc, lg, v, pass, !lg->rescanned);
	}
	return 0;
}

/* ---- the interface ---- */

struct cp_diskcache *cp_diskcache_open(const char *dir, uint64_t cap,
				       struct cp_stats *stats)
{
	struct cp_diskcache *dc = calloc(1, sizeof(*dc));
	struct ledger lg;
	size_t n;
	int err;

	if (!dc)
		return NULL;
	dc->cap = cap;
	dc->stats = stats;
	cp_durable_health_init(&dc->health);
	dc->nbuckets = 1024;
	dc->table = calloc(dc->nbuckets, sizeof(*dc->table));
	if (!dc->table || pthread_mutex_init(&dc->lock, NULL)) {
		free(dc->table);
		free(dc);
		return NULL;
	}

	if (!dir || !*dir ||
	    snprintf(dc->dir, sizeof(dc->dir), "%s", dir) >=
		    (int)sizeof(dc->dir)) {
		err = -EINVAL;
		goto disable;
	}
	/* Trailing slashes would only make paths ugly. */
	for (n = strlen(dc->dir); n > 1 && dc->dir[n - 1] == '/'; n--)
		dc->dir[n - 1] = '\0';
	if (snprintf(dc->ledger_path, sizeof(dc->ledger_path), "%s/%s",
		     dc->dir, DC_LEDGER) >= (int)sizeof(dc->ledger_path)) {
		err = -ENAMETOOLONG;
		goto disable;
	}
	err = cp_mkdir_p(dc->dir);
	if (!err)
		err = cp_dir_writable(dc->dir);
	if (!err)
		err = ledger_lock(dc, &lg, true); /* a mount's start heals */
	if (err)
		goto disable;
	make_room(dc, &lg, 0); /* the cap may have shrunk */
	cp_dbg("disk cache %s: %zu blocks, %" PRIu64 " bytes", dc->dir,
	       dc->nblocks, lg.total);
	ledger_unlock(&lg);
	return dc;

disable:
	cp_durable_disable(&dc->health, STORE, dc->dir,
			   "cannot use directory", -err);
	return dc;
}

void cp_diskcache_close(struct cp_diskcache *dc)
{
	if (!dc)
		return;
	index_clear(dc);
	free(dc->table);
	pthread_mutex_destroy(&dc->lock);
	free(dc);
}

static bool key_valid(const char *id, const char *etag)
{
	return cp_durable_id_ok(id) && etag && strlen(etag) <= DC_ETAG_MAX;
}

static void count(struct cp_diskcache *dc, bool hit)
{
	if (!dc || !dc->stats)
		return;
	if (hit)
		cp_stats_inc(dc->stats, disk_hits);
	else
		cp_stats_inc(dc->stats, disk_misses);
}

/*
 * Deletes what stands at a block's path and failed its checks (@fd: what
 * we read, or -1), unless a writer has replaced it meanwhile.
 */
static void discard(struct cp_diskcache *dc, const char *path, int fd,
		    const char *id, uint64_t etag_hash, uint64_t index)
{
	struct ledger lg;
	struct stat a, b;

	if (ledger_lock(dc, &lg, false))
		return;
	if (!lstat(path, &b) &&
	    (fd < 0 || (!fstat(fd, &a) && a.st_ino == b.st_ino &&
			a.st_dev == b.st_dev))) {
		cp_warn("disk cache: damaged block %s/%" PRIu64 " deleted", id,
			index);
		remove_counted(&lg, path, &b);
		index_forget(dc, id, etag_hash, index);
	}
	ledger_unlock(&lg);
}

/*
 * Reads and checks the block in @fd.  0 on a match, -ENOENT when it is a
 * sound block of another length or ETag, -EIO when it is damaged.
 */
static int read_block(int fd, const char *etag, uint64_t index, void *buf,
		      size_t len)
{
	unsigned char hdr[DC_HEADER];
	char stored_etag[DC_ETAG_MAX];
	size_t etag_len = strlen(etag);
	uint64_t sum, length, slen;
	struct stat st;

	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		return -EIO;
	if (cp_durable_read_all(fd, hdr, sizeof(hdr)))
		return -EIO;
	if (memcmp(hdr, DC_MAGIC, 8) ||
	    cp_durable_get_le(hdr + 8, 4) != DC_VERSION)
		return -EIO;
	slen = cp_durable_get_le(hdr + 12, 4);
	length = cp_durable_get_le(hdr + 24, 8);
	if (slen > DC_ETAG_MAX || cp_durable_get_le(hdr + 16, 8) != index ||
	    length > (uint64_t)st.st_size ||
	    (uint64_t)st.st_size != DC_HEADER + slen + length)
		return -EIO;
	if (slen != etag_len || length != len)
		return -ENOENT; /* wrong length asked: a miss, not damage */
	if (cp_durable_read_all(fd, stored_etag, slen))
		return -EIO;
	if (memcmp(stored_etag, etag, slen)) {
		/* Another ETag in the same directory: sound only if its
		 * hash really collides with ours. */
		if (cp_fnv1a64(stored_etag, slen) == cp_fnv1a64(etag, etag_len))
			return -ENOENT;
		return -EIO;
	}
	if (cp_durable_read_all(fd, buf, len))
		return -EIO;
	sum = cp_fnv1a64(hdr, 32);
	sum = cp_fnv1a64_update(sum, stored_etag, slen);
	sum = cp_fnv1a64_update(sum, buf, len);
	if (sum != cp_durable_get_le(hdr + 32, 8))
		return -EIO;
	return 0;
}

int cp_diskcache_get(struct cp_diskcache *dc, const char *id, const char *etag,
		     uint64_t index, void *buf, size_t len)
{
	char path[PATH_MAX];
	uint64_t etag_hash;
	int fd, err;

	if (!dc || !cp_durable_can_read(&dc->health) || !key_valid(id, etag))
		goto miss;
	etag_hash = cp_fnv1a64(etag, strlen(etag));
	if (block_path(dc, path, sizeof(path), id, etag_hash, index, 3))
		goto miss;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			index_forget(dc, id, etag_hash, index);
		else if (errno == ELOOP) /* a link is never one of ours */
			discard(dc, path, -1, id, etag_hash, index);
		goto miss;
	}
	err = read_block(fd, etag, index, buf, len);
	if (err == -EIO)
		discard(dc, path, fd, id, etag_hash, index);
	if (err) {
		close(fd);
		goto miss;
	}
	/* Record the use on disk too: LRU order survives a remount, and
	 * other mounts see it before they evict the block. */
	futimens(fd, touch_atime);
	close(fd);
	index_note(dc, id, etag_hash, index, now_ns());
	count(dc, true);
	return 0;

miss:
	count(dc, false);
	return -ENOENT;
}

/*
 * Makes room for @bytes, counts them, and creates the temporary file that
 * will hold them in @dir: at full size already, so a recount sees what
 * was reserved, and shared-locked, so a recount knows its writer lives.
 * The open fd (path in @tmp), or -errno.
 */
static int reserve(struct cp_diskcache *dc, const char *dir, uint64_t index,
		   uint64_t bytes, char *tmp, size_t len)
{
	struct ledger lg;
	bool raised = false;
	char tag[32];
	int fd = -1, err;

	err = ledger_lock(dc, &lg, false);
	if (err)
		return err;
	err = make_room(dc, &lg, bytes);
	if (!err) {
		lg.total += bytes; /* counted before the file exists */
		raised = true;
		err = ledger_store(&lg);
	}
	if (!err) {
		snprintf(tag, sizeof(tag), "tmp-%" PRIu64, index);
		fd = cp_durable_temp(dir, 2, tag, tmp, len); /* <id>/<hash> */
		if (fd < 0)
			err = fd;
	}
	if (!err) {
		flock(fd, LOCK_SH); /* without flock: kept DC_STALE_TMP */
		if (ftruncate(fd, (off_t)bytes) < 0) {
			err = -errno;
			close(fd);
			unlink(tmp);
		}
	}
	if (err && raised) {
		lg.total -= CP_MIN(lg.total, bytes);
		lg.dirty = true;
	}
	ledger_unlock(&lg);
	return err ? err : fd;
}

/*
 * Renames the temporary file @fd/@tmp over @path, or removes it when @err
 * says its writing failed, and settles the ledger: what leaves the total
 * is the file the rename replaced, or the reservation given back.
 */
static int commit(struct cp_diskcache *dc, int fd, const char *tmp,
		  const char *path, uint64_t reserved, int err)
{
	uint64_t gone = reserved;
	struct ledger lg;
	struct stat st;
	int lerr;

	lerr = ledger_lock(dc, &lg, false);
	if (lerr) {
		/* The reservation stays counted: too high is safe, and the
		 * next recount corrects it. */
		close(fd);
		unlink(tmp);
		return err ? err : lerr;
	}
	if (!err) {
		gone = !lstat(path, &st) && S_ISREG(st.st_mode)
			       ? (uint64_t)st.st_size
			       : 0;
		err = cp_durable_commit(fd, tmp, path); /* closes fd */
		if (err)
			gone = reserved;
	} else {
		close(fd);
		unlink(tmp);
	}
	if (gone) {
		lg.total -= CP_MIN(lg.total, gone);
		lg.dirty = true;
	}
	ledger_unlock(&lg);
	return err;
}

/*
 * Whether the block is on disk already (another mount, or a reader of the
 * same block, stored it): same key, same length means the same bytes; a
 * damaged one is caught by the get before the block is fetched again.
 * Rewriting it would need room for a second copy.  Marks the use.
 */
static bool already_stored(const char *path, uint64_t bytes)
{
	struct stat st;

	if (lstat(path, &st) || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != bytes)
		return false;
	utimensat(AT_FDCWD, path, touch_atime, AT_SYMLINK_NOFOLLOW);
	return true;
}

int cp_diskcache_put(struct cp_diskcache *dc, const char *id, const char *etag,
		     uint64_t index, const void *buf, size_t len)
{
	unsigned char hdr[DC_HEADER + DC_ETAG_MAX];
	char dir[PATH_MAX], tmp[PATH_MAX], path[PATH_MAX];
	size_t etag_len, hlen;
	uint64_t etag_hash, sum, bytes;
	int fd, err;

	if (!dc || !cp_durable_can_write(&dc->health))
		return 0;
	if (!key_valid(id, etag) || (!buf && len))
		return -EINVAL;
	etag_len = strlen(etag);
	hlen = DC_HEADER + etag_len;
	bytes = hlen + (uint64_t)len;
	if (bytes > dc->cap)
		return -EFBIG;
	etag_hash = cp_fnv1a64(etag, etag_len);

	memcpy(hdr, DC_MAGIC, 8);
	cp_durable_put_le(hdr + 8, DC_VERSION, 4);
	cp_durable_put_le(hdr + 12, etag_len, 4);
	cp_durable_put_le(hdr + 16, index, 8);
	cp_durable_put_le(hdr + 24, len, 8);
	memcpy(hdr + DC_HEADER, etag, etag_len);
	sum = cp_fnv1a64(hdr, 32);
	sum = cp_fnv1a64_update(sum, etag, etag_len);
	sum = cp_fnv1a64_update(sum, buf, len);
	cp_durable_put_le(hdr + 32, sum, 8);

	err = block_path(dc, dir, sizeof(dir), id, etag_hash, index, 2);
	if (!err)
		err = block_path(dc, path, sizeof(path), id, etag_hash, index,
				 3);
	if (err)
		return err;
	if (already_stored(path, bytes)) {
		index_note(dc, id, etag_hash, index, now_ns());
		return 0;
	}
	fd = reserve(dc, dir, index, bytes, tmp, sizeof(tmp));
	if (fd < 0) {
		err = fd;
		goto fail;
	}
	err = cp_durable_write_all(fd, hdr, hlen);
	if (!err)
		err = cp_durable_write_all(fd, buf, len);
	err = commit(dc, fd, tmp, path, bytes, err);
	if (err)
		goto fail;
	index_note(dc, id, etag_hash, index, now_ns());
	return 0;

fail:
	if (cp_durable_err_permanent(-err))
		cp_durable_failed(&dc->health, STORE, dc->dir, "cannot write",
				  -err);
	return err;
}

/* Removes the blocks of DIR/<id>/<name> and the directory once empty.
 * Temporary files stay: their writers own them and their reservations. */
static void remove_etag_dir(struct ledger *lg, int id_fd, const char *name)
{
	int fd = openat(id_fd, name,
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct dirent *de;
	DIR *d;

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		struct stat st;

		if (de->d_name[0] == '.' ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    unlinkat(dirfd(d), de->d_name, 0))
			continue;
		if (S_ISREG(st.st_mode)) {
			lg->total -= CP_MIN(lg->total, (uint64_t)st.st_size);
			lg->dirty = true;
		}
	}
	closedir(d);
	unlinkat(id_fd, name, AT_REMOVEDIR);
}

void cp_diskcache_drop(struct cp_diskcache *dc, const char *id,
		       const char *keep_etag)
{
	char path[PATH_MAX], keep[17] = "";
	struct block *b, *next, *gone = NULL;
	uint64_t keep_hash = 0;
	struct ledger lg;
	struct dirent *de;
	DIR *d;

	if (!dc || !cp_durable_can_write(&dc->health) || !cp_durable_id_ok(id))
		return;
	if (keep_etag) {
		keep_hash = cp_fnv1a64(keep_etag, strlen(keep_etag));
		snprintf(keep, sizeof(keep), "%016" PRIx64, keep_hash);
	}

	pthread_mutex_lock(&dc->lock);
	for (b = dc->oldest; b; b = next) {
		next = b->next;
		if (strcmp(b->id, id) ||
		    (keep_etag && b->etag_hash == keep_hash))
			continue;
		index_remove(dc, b);
		b->hnext = gone;
		gone = b;
	}
	pthread_mutex_unlock(&dc->lock);
	for (; gone; gone = next) {
		next = gone->hnext;
		free(gone);
	}

	/* Walk the disk as well: another mount may have added blocks. */
	if (block_path(dc, path, sizeof(path), id, 0, 0, 1) ||
	    ledger_lock(dc, &lg, false))
		return;
	d = opendir(path);
	if (d) {
		while ((de = readdir(d)))
			if (all_hex(de->d_name, 16) && strcmp(de->d_name, keep))
				remove_etag_dir(&lg, dirfd(d), de->d_name);
		closedir(d);
		rmdir(path); /* fails while the kept ETag has blocks */
	}
	ledger_unlock(&lg);
}
