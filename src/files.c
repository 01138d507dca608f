/*
 * files.c - the file table (see files.h).
 *
 * Owns: every struct cp_file, the by-id hash, the inode array, the
 * listing order, and the URL leases.  One mutex (files->lock) and one
 * condition variable (files->changed, for single-flight waiters) guard it
 * all; network calls happen with the lock released.
 */
#include "files.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api.h"
#include "cache.h"
#include "cfg.h"
#include "log.h"
#include "loop.h"
#include "meta.h"
#include "stats.h"
#include "util.h"

#define FIRST_BUCKETS 1024 /* grows to keep chains short */
#define CP_TYPE_MAX 127        /* bytes of a content type kept */
#define CP_FILE_NAME_MAX 255   /* bytes of a file name kept */

struct cp_files {
	const struct cp_config *cfg;
	struct cp_api *api;
	struct cp_meta *meta;
	struct cp_stats *stats;
	time_t mount_time;
	uid_t uid;                         /* owner shown: the config's, */
	gid_t gid;                         /* else the daemon's (constant) */
	uint64_t ino_mask;                 /* CP_INO_MASK but in tests */
	pthread_mutex_t lock;
	pthread_cond_t changed;
	/* Two chained hashes over the same entries, by id and by ino, of
	 * nbuckets each (a power of two, at least nfiles / 2).  Protected
	 * by lock. */
	struct cp_file **buckets;
	struct cp_file **ino_buckets;
	size_t nbuckets;
	size_t nfiles;                     /* protected by lock */
	struct cp_file **listed;           /* readdir order; protected */
	size_t nlisted, listed_cap;
	/* Bumped (under lock) when a file is added or listed or gets its
	 * name: what the by-name/ view is built from.  Read without it. */
	_Atomic uint64_t names_gen;
};

static size_t hash_id(const struct cp_files *files, const char *id)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*id)
		h = (h ^ (unsigned char)(*id++ | 0x20)) * 0x100000001b3ULL;
	return (size_t)(h ^ (h >> 32)) & (files->nbuckets - 1);
}

static size_t hash_ino(const struct cp_files *files, uint64_t ino)
{
	/* The low bits of an inode number are a good hash already. */
	return (size_t)(ino ^ (ino >> 32)) & (files->nbuckets - 1);
}

/* Doubles both hashes (called with the lock held); on ENOMEM the old
 * ones stay, only slower. */
static void grow_locked(struct cp_files *files)
{
	size_t n = files->nbuckets * 2, i;
	struct cp_file **byid = calloc(n, sizeof(*byid));
	struct cp_file **byino = calloc(n, sizeof(*byino));
	struct cp_file **old = files->buckets;

	if (!byid || !byino) {
		free(byid);
		free(byino);
		return;
	}
	free(files->ino_buckets);
	files->buckets = byid;
	files->ino_buckets = byino;
	files->nbuckets = n;
	for (i = 0; i < n / 2; i++) {
		struct cp_file *f = old[i], *next;

		for (; f; f = next) {
			size_t b = hash_id(files, f->id);

			next = f->hnext;
			f->hnext = byid[b];
			byid[b] = f;
			b = hash_ino(files, f->ino);
			f->inext = byino[b];
			byino[b] = f;
		}
	}
	free(old);
}

struct cp_files *cp_files_new(const struct cp_config *cfg,
			      struct cp_api *api, struct cp_meta *meta,
			      struct cp_stats *stats)
{
	struct cp_files *files = calloc(1, sizeof(*files));

	if (!files)
		return NULL;
	files->cfg = cfg;
	files->api = api;
	files->meta = meta;
	files->stats = stats;
	files->mount_time = time(NULL);
	/* Once, not per stat: a listing fills 100 000 of them. */
	files->uid = cfg->has_uid ? cfg->uid : getuid();
	files->gid = cfg->has_gid ? cfg->gid : getgid();
	files->ino_mask = CP_INO_MASK;
	files->nbuckets = FIRST_BUCKETS;
	files->buckets = calloc(FIRST_BUCKETS, sizeof(*files->buckets));
	files->ino_buckets = calloc(FIRST_BUCKETS,
				    sizeof(*files->ino_buckets));
	if (!files->buckets || !files->ino_buckets) {
		free(files->buckets);
		free(files->ino_buckets);
		free(files);
		return NULL;
	}
	pthread_mutex_init(&files->lock, NULL);
	pthread_cond_init(&files->changed, NULL);
	return files;
}

void cp_files_set_ino_mask(struct cp_files *files, uint64_t mask)
{
	files->ino_mask = mask;
}

void cp_files_free(struct cp_files *files)
{
	size_t b;

	if (!files)
		return;
	for (b = 0; b < files->nbuckets; b++) {
		struct cp_file *f = files->buckets[b], *next;

		for (; f; f = next) {
			next = f->hnext;
			free(f->url);
			free(f->public_url);
			free(f->etag);
			free(f->content_type);
			free(f->name);
			free(f);
		}
	}
	free(files->listed);
	free(files->buckets);
	free(files->ino_buckets);
	pthread_mutex_destroy(&files->lock);
	pthread_cond_destroy(&files->changed);
	free(files);
}

time_t cp_files_mount_time(struct cp_files *files)
{
	return files->mount_time;
}

static struct cp_file *find_locked(struct cp_files *files, const char *id)
{
	struct cp_file *f = files->buckets[hash_id(files, id)];

	while (f && strcasecmp(f->id, id) != 0)
		f = f->hnext;
	return f;
}

static struct cp_file *find_ino_locked(struct cp_files *files, uint64_t ino)
{
	struct cp_file *f = files->ino_buckets[hash_ino(files, ino)];

	while (f && f->ino != ino)
		f = f->inext;
	return f;
}

static void list_locked(struct cp_files *files, struct cp_file *f)
{
	struct cp_file **n;

	if (f->listed)
		return;
	if (files->nlisted == files->listed_cap) {
		size_t cap = files->listed_cap ? 2 * files->listed_cap : 64;

		n = realloc(files->listed, cap * sizeof(*n));
		if (!n)
			return;
		files->listed = n;
		files->listed_cap = cap;
	}
	files->listed[files->nlisted++] = f;
	f->listed = 1;
	files->names_gen++;
}

/* A string field as text ("" when unknown). */
static const char *str(const char *s)
{
	return s ? s : "";
}

/* Replaces the string field *@dst by a copy of @src cut to @max bytes;
 * "" (or no memory) leaves it unknown. */
static void set_str(char **dst, const char *src, size_t max)
{
	char *copy = src && src[0] ? strndup(src, max) : NULL;

	free(*dst);
	*dst = copy;
}

static void seed_from_record(struct cp_file *f,
			     const struct cp_meta_record *rec)
{
	if (rec->size >= 0 && rec->etag[0]) {
		f->size = rec->size;
		set_str(&f->etag, rec->etag, CP_ETAG_MAX - 1);
	}
	if (rec->mtime > 0)
		f->mtime = rec->mtime;
	if (rec->created_at >= 0)
		f->created_at = rec->created_at;
	set_str(&f->content_type, rec->content_type, CP_TYPE_MAX);
	set_str(&f->name, rec->name, CP_FILE_NAME_MAX);
}

/*
 * Called with the lock held.  @rec: the persisted record of @id, read
 * before the lock was taken, or NULL.  The inode number is the id's
 * hash; the first attempt not already taken in this mount wins.
 */
static struct cp_file *add_locked(struct cp_files *files, const char *id,
				  const struct cp_meta_record *rec)
{
	struct cp_file *f = find_locked(files, id);
	size_t b;
	unsigned attempt = 0;

	if (f)
		return f;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	snprintf(f->id, sizeof(f->id), "%s", id);
	do
		f->ino = cp_ino_make(CP_INO_FILE, f->id, NULL, attempt++,
				     files->ino_mask);
	while (find_ino_locked(files, f->ino));
	f->size = -1;
	f->created_at = -1;
	f->width = f->height = -1;
	if (rec)
		seed_from_record(f, rec);
	if (files->nfiles >= 2 * files->nbuckets)
		grow_locked(files);
	b = hash_id(files, f->id);
	f->hnext = files->buckets[b];
	files->buckets[b] = f;
	b = hash_ino(files, f->ino);
	f->inext = files->ino_buckets[b];
	files->ino_buckets[b] = f;
	files->nfiles++;
	return f;
}

/* The entry of @id, created if absent; the persisted record is read
 * from the disk with the lock released. */
static struct cp_file *get_or_add(struct cp_files *files, const char *id,
				  int lock_held_on_return)
{
	struct cp_meta_record rec;
	struct cp_file *f;
	int have;

	pthread_mutex_lock(&files->lock);
	f = find_locked(files, id);
	if (f)
		goto out;
	pthread_mutex_unlock(&files->lock);
	have = files->meta && cp_meta_get(files->meta, id, &rec) == 0;
	pthread_mutex_lock(&files->lock);
	f = add_locked(files, id, have ? &rec : NULL);
out:
	if (!lock_held_on_return)
		pthread_mutex_unlock(&files->lock);
	return f;
}

void cp_file_facts_init(struct cp_file_facts *facts, const char *id)
{
	memset(facts, 0, sizeof(*facts));
	facts->id = id;
	facts->size = -1;
	facts->created_at = -1;
	facts->width = facts->height = -1;
}

static void set_public_url_locked(struct cp_files *files, struct cp_file *f,
				  const char *url)
{
	char *copy;

	if (f->public_url && strcmp(f->public_url, url) == 0)
		return;
	copy = strdup(url);
	if (!copy)
		return;
	free(f->public_url);
	f->public_url = copy;
	f->public_gen = ++f->url_gen;
	/* An id /download refused before its URL was known now reads. */
	f->neg_err = 0;
	pthread_cond_broadcast(&files->changed);
}

struct cp_file *cp_files_add_facts(struct cp_files *files,
				   const struct cp_file_facts *e)
{
	struct cp_file *f = get_or_add(files, e->id, 1);

	if (f) {
		/* A size stands until a probe says otherwise. */
		if (f->size < 0 && e->size >= 0)
			f->size = e->size;
		if (e->created_at >= 0)
			f->created_at = e->created_at;
		if (!f->name && e->name && e->name[0]) {
			set_str(&f->name, e->name, CP_FILE_NAME_MAX);
			files->names_gen++;
		}
		if (!f->content_type)
			set_str(&f->content_type, e->content_type,
				CP_TYPE_MAX);
		if (e->purpose != CP_PURPOSE_UNKNOWN)
			f->purpose = e->purpose;
		if (e->public_url)
			set_public_url_locked(files, f, e->public_url);
		if (e->width > 0)
			f->width = e->width;
		if (e->height > 0)
			f->height = e->height;
		list_locked(files, f);
	}
	pthread_mutex_unlock(&files->lock);
	return f;
}

struct cp_file *cp_files_get(struct cp_files *files, const char *id)
{
	return get_or_add(files, id, 0);
}

struct cp_file *cp_files_by_ino(struct cp_files *files, uint64_t ino)
{
	struct cp_file *f;

	pthread_mutex_lock(&files->lock);
	f = find_ino_locked(files, ino);
	pthread_mutex_unlock(&files->lock);
	return f;
}

static int wait_locked(struct cp_files *files, double deadline)
{
	struct timespec ts;

	cp_deadline_timespec(deadline, &ts);
	cp_loop_blocking();
	return pthread_cond_timedwait(&files->changed, &files->lock, &ts) ==
			       ETIMEDOUT
		       ? -EIO
		       : 0;
}

int cp_files_begin_resolve(struct cp_files *files, struct cp_file *file,
			   int need_probe, double deadline)
{
	int ret;

	pthread_mutex_lock(&files->lock);
	for (;;) {
		/* An ETag persisted by an earlier mount is as good as a
		 * probe: objects do not change under an id, and if one
		 * did, If-Match on the next transfer would say so. */
		if (file->size >= 0 &&
		    (!need_probe || file->probed || file->etag)) {
			ret = 0;
			break;
		}
		if (file->neg_err && cp_now() < file->neg_until) {
			ret = -file->neg_err;
			break;
		}
		if (!file->resolving) {
			file->resolving = 1;
			ret = 1;
			break;
		}
		if (wait_locked(files, deadline) < 0) {
			ret = -EIO;
			break;
		}
	}
	pthread_mutex_unlock(&files->lock);
	return ret;
}

/* The record of @f as it stands; called with the lock held. */
static void record_locked(const struct cp_file *f,
			  struct cp_meta_record *rec)
{
	cp_meta_record_init(rec, f->id);
	rec->size = f->size;
	rec->mtime = f->mtime;
	rec->created_at = f->created_at;
	snprintf(rec->etag, sizeof(rec->etag), "%s", str(f->etag));
	snprintf(rec->content_type, sizeof(rec->content_type), "%s",
		 str(f->content_type));
	snprintf(rec->name, sizeof(rec->name), "%s", str(f->name));
}

void cp_files_end_resolve(struct cp_files *files, struct cp_file *file,
			  const struct cp_object_info *info, int err)
{
	struct cp_meta_record rec;
	int save = 0;

	pthread_mutex_lock(&files->lock);
	file->resolving = 0;
	if (!err && info) {
		/* The first Last-Modified stays until the object changes. */
		if (info->last_modified &&
		    (!file->mtime ||
		     (file->etag && strcmp(file->etag, info->etag) != 0)))
			file->mtime = info->last_modified;
		file->size = info->total;
		file->probed = 1;
		set_str(&file->etag, info->etag, CP_ETAG_MAX - 1);
		if (info->content_type[0])
			set_str(&file->content_type, info->content_type,
				CP_TYPE_MAX);
		if (!file->name && info->filename[0]) {
			set_str(&file->name, info->filename,
				CP_FILE_NAME_MAX);
			files->names_gen++;
		}
		file->neg_err = 0;
		list_locked(files, file);
		record_locked(file, &rec);
		save = files->meta != NULL;
	} else if (err == -ENOENT) {
		file->neg_err = ENOENT;
		file->neg_until = cp_now() + files->cfg->neg_ttl;
	}
	pthread_cond_broadcast(&files->changed);
	pthread_mutex_unlock(&files->lock);
	/* A copy taken under the lock, written outside it. */
	if (save)
		cp_meta_put(files->meta, &rec);
}

/* Called with the lock held: the public URL as a lease, or -EIO when
 * the data host refused exactly that URL (it cannot be renewed). */
static int public_lease_locked(struct cp_file *file, uint64_t stale_gen,
			       char **url, uint64_t *gen)
{
	if (stale_gen && stale_gen == file->public_gen) {
		cp_warn("%s: the public URL was refused", file->id);
		return -EIO;
	}
	*url = strdup(file->public_url);
	*gen = file->public_gen;
	return *url ? 0 : -ENOMEM;
}

int cp_files_lease(struct cp_files *files, struct cp_file *file,
		   uint64_t stale_gen, char **url, uint64_t *gen,
		   double deadline)
{
	int64_t expires = 0;
	char *fresh = NULL;
	double asked;
	int ret;

	pthread_mutex_lock(&files->lock);
	for (;;) {
		int valid = file->url && cp_now() < file->url_deadline &&
			    file->url_gen != stale_gen;

		if (file->public_url) {
			ret = public_lease_locked(file, stale_gen, url, gen);
			pthread_mutex_unlock(&files->lock);
			return ret;
		}
		if (valid) {
			*url = strdup(file->url);
			*gen = file->url_gen;
			pthread_mutex_unlock(&files->lock);
			return *url ? 0 : -ENOMEM;
		}
		if (file->neg_err && cp_now() < file->neg_until) {
			ret = -file->neg_err;
			pthread_mutex_unlock(&files->lock);
			return ret;
		}
		if (!file->calling)
			break;
		if (wait_locked(files, deadline) < 0) {
			pthread_mutex_unlock(&files->lock);
			return -EIO;
		}
	}
	file->calling = 1;
	if (file->url)
		cp_stats_inc(files->stats, url_renewals);
	pthread_mutex_unlock(&files->lock);

	asked = cp_now();
	ret = cp_api_download_url(files->api, file->id, &fresh, &expires,
				  deadline);

	pthread_mutex_lock(&files->lock);
	file->calling = 0;
	if (ret == 0) {
		double margin = CP_LEASE_MARGIN;

		/* Short leases (tests, odd servers): keep most of them. */
		if (margin > expires / 5.0)
			margin = expires / 5.0;
		free(file->url);
		file->url = fresh;
		file->url_deadline = asked + expires - margin;
		*gen = ++file->url_gen;
		*url = strdup(fresh);
		if (!*url)
			ret = -ENOMEM;
	} else if (ret == -ENOENT && file->public_url) {
		/* /download serves private files only; discovery found the
		 * public URL meanwhile. */
		ret = public_lease_locked(file, stale_gen, url, gen);
	} else if (ret == -ENOENT) {
		file->neg_err = ENOENT;
		file->neg_until = cp_now() + files->cfg->neg_ttl;
	}
	pthread_cond_broadcast(&files->changed);
	pthread_mutex_unlock(&files->lock);
	return ret;
}

int cp_files_known(struct cp_files *files, struct cp_file *file)
{
	int ret = 0;

	pthread_mutex_lock(&files->lock);
	if (file->size >= 0)
		ret = 1;
	else if (file->neg_err && cp_now() < file->neg_until)
		ret = -file->neg_err;
	pthread_mutex_unlock(&files->lock);
	return ret;
}

void cp_files_view(struct cp_files *files, struct cp_file *file,
		   struct cp_file_view *view)
{
	pthread_mutex_lock(&files->lock);
	view->size = file->size;
	view->gen = file->gen;
	snprintf(view->etag, sizeof(view->etag), "%s", str(file->etag));
	pthread_mutex_unlock(&files->lock);
}

int cp_files_changed(struct cp_files *files, struct cp_file *file,
		     uint64_t gen)
{
	int bumped = 0;

	pthread_mutex_lock(&files->lock);
	if (file->gen == gen) {
		file->gen++;
		file->size = -1;
		set_str(&file->etag, NULL, 0);
		file->mtime = 0; /* the next probe's Last-Modified */
		file->probed = 0;
		bumped = 1;
	}
	pthread_mutex_unlock(&files->lock);
	if (bumped) {
		cp_stats_inc(files->stats, etag_changes);
		cp_warn("%s: the object changed while open; open handles "
			"fail with EIO",
			file->id);
	}
	return bumped;
}

int cp_files_keep_cache(struct cp_files *files, struct cp_file *file)
{
	int keep;

	pthread_mutex_lock(&files->lock);
	keep = file->opened_gen == file->gen;
	file->opened_gen = file->gen;
	pthread_mutex_unlock(&files->lock);
	return keep;
}

/* The creation time an ObjectId carries in its first four bytes. */
static time_t objectid_time(const char *id)
{
	char hex[9];

	memcpy(hex, id, 8);
	hex[8] = '\0';
	return (time_t)strtoul(hex, NULL, 16);
}

void cp_files_stat(struct cp_files *files, struct cp_file *file,
		   struct stat *st)
{
	const struct cp_config *cfg = files->cfg;
	mode_t mode = 0444;

	memset(st, 0, sizeof(*st));
	if (cfg->has_umask)
		mode &= ~cfg->umask;
	st->st_ino = file->ino;
	st->st_mode = S_IFREG | mode;
	st->st_nlink = 1;
	st->st_uid = files->uid;
	st->st_gid = files->gid;
	st->st_blksize = CP_BLOCK_SIZE;
	pthread_mutex_lock(&files->lock);
	st->st_size = file->size > 0 ? file->size : 0;
	/* A file shown with a size but no time yet (discovered images,
	 * manifest records without createdAt) keeps the time it is first
	 * shown with, so a later probe's Last-Modified does not move it:
	 * its ObjectId's creation time, the same in every mount. */
	if (file->created_at < 0 && !file->mtime && file->size >= 0)
		file->mtime = objectid_time(file->id);
	if (file->created_at >= 0)
		st->st_mtime = file->created_at;
	else if (file->mtime)
		st->st_mtime = file->mtime;
	else
		st->st_mtime = files->mount_time;
	pthread_mutex_unlock(&files->lock);
	st->st_blocks = (st->st_size + 511) / 512;
	st->st_atime = st->st_ctime = st->st_mtime;
}

uint64_t cp_files_names_gen(struct cp_files *files)
{
	return files->names_gen;
}

struct cp_file *cp_files_listed(struct cp_files *files, size_t i)
{
	struct cp_file *f = NULL;

	pthread_mutex_lock(&files->lock);
	if (i < files->nlisted)
		f = files->listed[i];
	pthread_mutex_unlock(&files->lock);
	return f;
}

size_t cp_files_field(struct cp_files *files, struct cp_file *file,
		      const char *field, char *buf, size_t len)
{
	static const char *const purposes[] = { "", "file", "image" };

	if (!len)
		return 0;
	buf[0] = '\0';
	pthread_mutex_lock(&files->lock);
	if (strcmp(field, "name") == 0) {
		snprintf(buf, len, "%s", str(file->name));
	} else if (strcmp(field, "content_type") == 0) {
		snprintf(buf, len, "%s", str(file->content_type));
	} else if (strcmp(field, "etag") == 0) {
		snprintf(buf, len, "%s", str(file->etag));
	} else if (strcmp(field, "purpose") == 0) {
		if (file->purpose >= 0 &&
		    (size_t)file->purpose < CP_ARRAY_SIZE(purposes))
			snprintf(buf, len, "%s", purposes[file->purpose]);
	} else if (strcmp(field, "url") == 0) {
		if (file->public_url)
			snprintf(buf, len, "%s", file->public_url);
	} else if (strcmp(field, "width") == 0) {
		if (file->width > 0)
			snprintf(buf, len, "%d", (int)file->width);
	} else if (strcmp(field, "height") == 0) {
		if (file->height > 0)
			snprintf(buf, len, "%d", (int)file->height);
	} else if (strcmp(field, "created_at") == 0 &&
		   file->created_at >= 0) {
		struct tm tm;
		time_t t = (time_t)file->created_at;

		gmtime_r(&t, &tm);
		if (!strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
			buf[0] = '\0';
	}
	pthread_mutex_unlock(&files->lock);
	return strlen(buf);
}
