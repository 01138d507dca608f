/*
 * diskcache.c - opt-in on-disk cache of file data blocks.
 *
 * Owns the directory given with -o disk_cache=DIR, laid out as
 *
 *	DIR/<id>/<etag hash>/<index>
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
 * the checksum verifies; a damaged block is deleted.  Blocks are written
 * to a temporary file in their directory and renamed into place.
 *
 * The cap is kept with an in-memory index of the blocks on disk (built by
 * scanning DIR at open, oldest access first): a hash table for lookups and
 * a list in least-recently-used order.  A get that hits moves its block
 * to the recent end and stamps the file's atime, so the order survives a
 * remount.  A put evicts from the old end until the total is under the
 * cap.  Another mount sharing DIR has its own index: the cap then holds
 * per mount, and a block one mount deletes is a miss for the other.
 *
 * Thread safety: any thread; one mutex guards the index and its totals,
 * file I/O is done outside it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "diskcache.h"
#include "log.h"
#include "stats.h"
#include "util.h"

#define DC_MAGIC "CPFSBLK\n"
#define DC_VERSION 1
#define DC_HEADER 40
#define DC_ID_MAX 24
#define DC_ETAG_MAX 1024
#define DC_STALE_TMP 3600 /* seconds before a left-over temp file goes */

struct block {
	struct block *hnext;	   /* hash chain */
	struct block *prev, *next; /* LRU list: head is the oldest */
	uint64_t etag_hash;
	uint64_t index;
	uint64_t bytes; /* file size on disk */
	char id[DC_ID_MAX + 1];
};

struct cp_diskcache {
	char dir[PATH_MAX];
	uint64_t cap;
	struct cp_stats *stats; /* may be NULL */
	atomic_bool disabled;	/* open failed: every call is a no-op */
	atomic_bool no_writes;	/* disk full or read-only: gets only */
	atomic_bool warned;

	pthread_mutex_t lock;
	struct block **table; /* protected by lock */
	size_t nbuckets;      /* protected by lock */
	size_t nblocks;	      /* protected by lock */
	uint64_t total; /* bytes of all indexed blocks; protected by lock */
	struct block *oldest; /* protected by lock */
	struct block *newest; /* protected by lock */
};

static uint64_t fnv1a64_update(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len--) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t fnv1a64(const void *data, size_t len)
{
	return fnv1a64_update(0xcbf29ce484222325ULL, data, len);
}

static bool id_valid(const char *id)
{
	size_t n;

	if (!id)
		return false;
	for (n = 0; id[n]; n++) {
		char c = id[n];

		if (n >= DC_ID_MAX)
			return false;
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		      (c >= 'A' && c <= 'Z')))
			return false;
	}
	return n > 0;
}

static void warn_once(struct cp_diskcache *dc, const char *what, int err)
{
	if (!atomic_exchange(&dc->warned, true))
		cp_warn("disk cache %s: %s: %s; continuing without it", dc->dir,
			what, strerror(err));
}

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
	int i;

	for (i = 0; i < bytes; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
	uint64_t v = 0;
	int i;

	for (i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* short file */
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
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
	uint64_t h = fnv1a64(id, strlen(id));

	h = fnv1a64_update(h, &etag_hash, sizeof(etag_hash));
	h = fnv1a64_update(h, &index, sizeof(index));
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
	dc->total += b->bytes;
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
	dc->total -= b->bytes;
}

/*
 * Records that (id, etag_hash, index) is on disk with @bytes, as the most
 * recently used block.  Returns the blocks evicted to stay under the cap,
 * chained through hnext, for the caller to delete outside the lock.
 */
static struct block *index_note(struct cp_diskcache *dc, const char *id,
				uint64_t etag_hash, uint64_t index,
				uint64_t bytes, bool evict)
{
	struct block *b, *victims = NULL;

	b = index_find(dc, id, etag_hash, index);
	if (b) {
		lru_unlink(dc, b);
		lru_append(dc, b);
		dc->total += bytes - b->bytes;
		b->bytes = bytes;
	} else {
		b = calloc(1, sizeof(*b));
		if (!b)
			return NULL; /* unindexed: only the cap suffers */
		memcpy(b->id, id, strlen(id) + 1); /* id_valid() */
		b->etag_hash = etag_hash;
		b->index = index;
		b->bytes = bytes;
		index_insert(dc, b);
	}
	while (evict && dc->total > dc->cap && dc->oldest && dc->oldest != b) {
		struct block *v = dc->oldest;

		index_remove(dc, v);
		v->hnext = victims;
		victims = v;
	}
	return victims;
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

/* ---- files ---- */

/* Deletes evicted blocks (and their directories once empty), frees them. */
static void delete_victims(struct cp_diskcache *dc, struct block *v)
{
	char path[PATH_MAX];
	struct block *next;

	for (; v; v = next) {
		next = v->hnext;
		if (!block_path(dc, path, sizeof(path), v->id, v->etag_hash,
				v->index, 3))
			unlink(path);
		/* rmdir fails harmlessly while other blocks remain. */
		if (!block_path(dc, path, sizeof(path), v->id, v->etag_hash, 0,
				2) &&
		    !rmdir(path) &&
		    !block_path(dc, path, sizeof(path), v->id, 0, 0, 1))
			rmdir(path);
		free(v);
	}
}

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

struct scanned {
	struct block *b;
	struct timespec used;
};

static int by_use(const void *a, const void *b)
{
	const struct timespec *x = &((const struct scanned *)a)->used;
	const struct timespec *y = &((const struct scanned *)b)->used;

	if (x->tv_sec != y->tv_sec)
		return x->tv_sec < y->tv_sec ? -1 : 1;
	if (x->tv_nsec != y->tv_nsec)
		return x->tv_nsec < y->tv_nsec ? -1 : 1;
	return 0;
}

static struct timespec later(struct timespec a, struct timespec b)
{
	if (a.tv_sec != b.tv_sec)
		return a.tv_sec > b.tv_sec ? a : b;
	return a.tv_nsec > b.tv_nsec ? a : b;
}

/* Scans one DIR/<id>/<hash> directory into @list. 0 or -ENOMEM. */
static int scan_etag_dir(const char *id, uint64_t etag_hash, int dfd,
			 struct scanned **list, size_t *n, size_t *cap)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	time_t now = time(NULL);
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
		if (de->d_name[0] == '.') {
			/* A temp file a crashed writer left behind. */
			if (!strncmp(de->d_name, ".tmp", 4) &&
			    S_ISREG(st.st_mode) &&
			    now - st.st_mtime > DC_STALE_TMP)
				unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if (!S_ISREG(st.st_mode) || !parse_index(de->d_name, &index))
			continue;
		if (*n == *cap) {
			size_t ncap = *cap ? *cap * 2 : 256;
			struct scanned *l = realloc(*list, ncap * sizeof(*l));

			if (!l) {
				err = -ENOMEM;
				break;
			}
			*list = l;
			*cap = ncap;
		}
		b = calloc(1, sizeof(*b));
		if (!b) {
			err = -ENOMEM;
			break;
		}
		memcpy(b->id, id, strlen(id) + 1); /* id_valid() */
		b->etag_hash = etag_hash;
		b->index = index;
		b->bytes = (uint64_t)st.st_size;
		(*list)[*n].b = b;
		(*list)[*n].used = later(st.st_atim, st.st_mtim);
		(*n)++;
	}
	closedir(d);
	return err;
}

/* Builds the index from what is on disk, oldest use first. */
static int scan(struct cp_diskcache *dc)
{
	struct scanned *list = NULL;
	size_t n = 0, cap = 0, i;
	struct dirent *de;
	DIR *top;
	int err = 0;

	top = opendir(dc->dir);
	if (!top)
		return -errno;
	while (!err && (de = readdir(top))) {
		struct dirent *he;
		DIR *idd;
		int fd;

		if (!id_valid(de->d_name))
			continue;
		fd = openat(dirfd(top), de->d_name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		idd = fdopendir(fd);
		if (!idd) {
			close(fd);
			continue;
		}
		while (!err && (he = readdir(idd))) {
			int hfd;

			if (!all_hex(he->d_name, 16))
				continue;
			hfd = openat(dirfd(idd), he->d_name,
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					     O_CLOEXEC);
			if (hfd < 0)
				continue;
			err = scan_etag_dir(de->d_name,
					    strtoull(he->d_name, NULL, 16), hfd,
					    &list, &n, &cap);
		}
		closedir(idd);
	}
	closedir(top);

	if (n)
		qsort(list, n, sizeof(*list), by_use);
	for (i = 0; i < n; i++) {
		if (err)
			free(list[i].b);
		else
			index_insert(dc, list[i].b);
	}
	free(list);
	return err;
}


struct cp_diskcache *cp_diskcache_open(const char *dir, uint64_t cap,
				       struct cp_stats *stats)
{
	struct cp_diskcache *dc = calloc(1, sizeof(*dc));
	struct block *victims;
	int err;

	if (!dc)
		return NULL;
	dc->cap = cap;
	dc->stats = stats;
	atomic_init(&dc->disabled, false);
	atomic_init(&dc->no_writes, false);
	atomic_init(&dc->warned, false);
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
	for (size_t n = strlen(dc->dir); n > 1 && dc->dir[n - 1] == '/'; n--)
		dc->dir[n - 1] = '\0';
	err = cp_mkdir_p(dc->dir);
	if (!err)
		err = cp_dir_writable(dc->dir);
	if (!err)
		err = scan(dc);
	if (err)
		goto disable;

	/* The cap may have shrunk since the last mount. */
	victims = NULL;
	while (dc->total > dc->cap && dc->oldest) {
		struct block *v = dc->oldest;

		index_remove(dc, v);
		v->hnext = victims;
		victims = v;
	}
	delete_victims(dc, victims);
	cp_dbg("disk cache %s: %zu blocks, %" PRIu64 " bytes", dc->dir,
	       dc->nblocks, dc->total);
	return dc;

disable:
	warn_once(dc, "cannot use directory", -err);
	atomic_store(&dc->disabled, true);
	return dc;
}

void cp_diskcache_close(struct cp_diskcache *dc)
{
	struct block *b, *next;

	if (!dc)
		return;
	for (b = dc->oldest; b; b = next) {
		next = b->next;
		free(b);
	}
	free(dc->table);
	pthread_mutex_destroy(&dc->lock);
	free(dc);
}

static bool key_valid(const char *id, const char *etag)
{
	return id_valid(id) && etag && strlen(etag) <= DC_ETAG_MAX;
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

/* Deletes a damaged block, unless a writer has just replaced it. */
static void discard(struct cp_diskcache *dc, const char *path, int fd,
		    const char *id, uint64_t etag_hash, uint64_t index)
{
	struct stat a, b;

	if (!fstat(fd, &a) && !stat(path, &b) && a.st_ino == b.st_ino &&
	    a.st_dev == b.st_dev) {
		cp_warn("disk cache: damaged block %s/%" PRIu64 " deleted", id,
			index);
		unlink(path);
		index_forget(dc, id, etag_hash, index);
	}
}

/*
 * Reads and checks the block in @fd.  0 on a match, -ENOENT when it is a
 * sound block of another length or ETag, -EIO when it is damaged.
 */
static int read_block(int fd, const char *etag, uint64_t index, void *buf,
		      size_t len, uint64_t *file_size)
{
	unsigned char hdr[DC_HEADER];
	char stored_etag[DC_ETAG_MAX];
	size_t etag_len = strlen(etag);
	uint64_t sum, length, slen;
	struct stat st;
	int err;

	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		return -EIO;
	err = read_all(fd, hdr, sizeof(hdr));
	if (err)
		return -EIO;
	if (memcmp(hdr, DC_MAGIC, 8) || get_le(hdr + 8, 4) != DC_VERSION)
		return -EIO;
	slen = get_le(hdr + 12, 4);
	length = get_le(hdr + 24, 8);
	if (slen > DC_ETAG_MAX || get_le(hdr + 16, 8) != index ||
	    length > (uint64_t)st.st_size ||
	    (uint64_t)st.st_size != DC_HEADER + slen + length)
		return -EIO;
	*file_size = (uint64_t)st.st_size;
	if (slen != etag_len || length != len)
		return -ENOENT; /* wrong length asked: a miss, not damage */
	if (read_all(fd, stored_etag, slen))
		return -EIO;
	if (memcmp(stored_etag, etag, slen)) {
		/* Another ETag in the same directory: sound only if its
		 * hash really collides with ours. */
		if (fnv1a64(stored_etag, slen) == fnv1a64(etag, etag_len))
			return -ENOENT;
		return -EIO;
	}
	if (read_all(fd, buf, len))
		return -EIO;
	sum = fnv1a64(hdr, 32);
	sum = fnv1a64_update(sum, stored_etag, slen);
	sum = fnv1a64_update(sum, buf, len);
	if (sum != get_le(hdr + 32, 8))
		return -EIO;
	return 0;
}

int cp_diskcache_get(struct cp_diskcache *dc, const char *id, const char *etag,
		     uint64_t index, void *buf, size_t len)
{
	static const struct timespec touch_atime[2] = {
		{.tv_nsec = UTIME_NOW},
		{.tv_nsec = UTIME_OMIT},
	};
	char path[PATH_MAX];
	uint64_t etag_hash, file_size = 0;
	struct block *victims;
	int fd, err;

	if (!dc || atomic_load(&dc->disabled) || !key_valid(id, etag))
		goto miss;
	etag_hash = fnv1a64(etag, strlen(etag));
	if (block_path(dc, path, sizeof(path), id, etag_hash, index, 3))
		goto miss;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			index_forget(dc, id, etag_hash, index);
		goto miss;
	}
	err = read_block(fd, etag, index, buf, len, &file_size);
	if (err == -EIO)
		discard(dc, path, fd, id, etag_hash, index);
	if (err) {
		close(fd);
		goto miss;
	}
	/* Remember the use on disk too, so LRU order survives a remount. */
	futimens(fd, touch_atime);
	close(fd);

	pthread_mutex_lock(&dc->lock);
	victims = index_note(dc, id, etag_hash, index, file_size, false);
	pthread_mutex_unlock(&dc->lock);
	delete_victims(dc, victims); /* always NULL without evict */
	count(dc, true);
	return 0;

miss:
	count(dc, false);
	return -ENOENT;
}

/* Creates the temp file for a block, making its directories as needed. */
static int create_temp(struct cp_diskcache *dc, const char *id,
		       uint64_t etag_hash, uint64_t index, char *tmp,
		       size_t len)
{
	char dir[PATH_MAX];
	int attempt, fd, err;

	err = block_path(dc, dir, sizeof(dir), id, etag_hash, index, 2);
	if (err)
		return err;
	/* Eviction may rmdir a directory between our mkdir and mkstemp. */
	for (attempt = 0; attempt < 3; attempt++) {
		if (snprintf(tmp, len, "%s/.tmp-%" PRIu64 ".XXXXXX", dir,
			     index) >= (int)len)
			return -ENAMETOOLONG;
		fd = mkostemp(tmp, O_CLOEXEC);
		if (fd >= 0)
			return fd;
		if (errno != ENOENT)
			return -errno;
		err = cp_mkdir_p(dir);
		if (err)
			return err;
	}
	return -ENOENT;
}

int cp_diskcache_put(struct cp_diskcache *dc, const char *id, const char *etag,
		     uint64_t index, const void *buf, size_t len)
{
	unsigned char hdr[DC_HEADER + DC_ETAG_MAX];
	char tmp[PATH_MAX], path[PATH_MAX];
	size_t etag_len, hlen;
	uint64_t etag_hash, sum, bytes;
	struct block *victims;
	int fd, err;

	if (!dc || atomic_load(&dc->disabled) || atomic_load(&dc->no_writes))
		return 0;
	if (!key_valid(id, etag) || (!buf && len))
		return -EINVAL;
	etag_len = strlen(etag);
	hlen = DC_HEADER + etag_len;
	bytes = hlen + (uint64_t)len;
	if (bytes > dc->cap)
		return -EFBIG;
	etag_hash = fnv1a64(etag, etag_len);

	memcpy(hdr, DC_MAGIC, 8);
	put_le(hdr + 8, DC_VERSION, 4);
	put_le(hdr + 12, etag_len, 4);
	put_le(hdr + 16, index, 8);
	put_le(hdr + 24, len, 8);
	memcpy(hdr + DC_HEADER, etag, etag_len);
	sum = fnv1a64(hdr, 32);
	sum = fnv1a64_update(sum, etag, etag_len);
	sum = fnv1a64_update(sum, buf, len);
	put_le(hdr + 32, sum, 8);

	err = block_path(dc, path, sizeof(path), id, etag_hash, index, 3);
	if (err)
		return err;
	fd = create_temp(dc, id, etag_hash, index, tmp, sizeof(tmp));
	if (fd < 0) {
		err = fd;
		goto fail;
	}
	err = write_all(fd, hdr, hlen);
	if (!err)
		err = write_all(fd, buf, len);
	if (close(fd) < 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err) {
		unlink(tmp);
		goto fail;
	}

	pthread_mutex_lock(&dc->lock);
	victims = index_note(dc, id, etag_hash, index, bytes, true);
	pthread_mutex_unlock(&dc->lock);
	delete_victims(dc, victims);
	return 0;

fail:
	if (err == -ENOSPC || err == -EDQUOT || err == -EROFS ||
	    err == -EACCES || err == -EPERM) {
		warn_once(dc, "cannot write", -err);
		atomic_store(&dc->no_writes, true);
	}
	return err;
}

/* Removes DIR/<id>/<hash> with its files. */
static void remove_etag_dir(int id_fd, const char *name)
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
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	unlinkat(id_fd, name, AT_REMOVEDIR);
}

void cp_diskcache_drop(struct cp_diskcache *dc, const char *id,
		       const char *keep_etag)
{
	char path[PATH_MAX], keep[17] = "";
	struct block *b, *next, *gone = NULL;
	uint64_t keep_hash = 0;
	struct dirent *de;
	DIR *d;

	if (!dc || atomic_load(&dc->disabled) || !id_valid(id))
		return;
	if (keep_etag) {
		keep_hash = fnv1a64(keep_etag, strlen(keep_etag));
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
	if (block_path(dc, path, sizeof(path), id, 0, 0, 1))
		return;
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d)))
		if (all_hex(de->d_name, 16) && strcmp(de->d_name, keep))
			remove_etag_dir(dirfd(d), de->d_name);
	closedir(d);
	rmdir(path); /* fails while the kept ETag has blocks */
}
