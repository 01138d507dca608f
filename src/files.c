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
#include "log.h"
#include "manifest.h"
#include "meta.h"
#include "opts.h"
#include "stats.h"
#include "util.h"

#define FIRST_FILE_INO 16
#define NBUCKETS 4096

struct cp_files {
	const struct cp_config *cfg;
	struct cp_api *api;
	struct cp_meta *meta;
	struct cp_stats *stats;
	time_t mount_time;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct cp_file *buckets[NBUCKETS]; /* protected by lock */
	struct cp_file **by_ino;           /* index ino - FIRST_FILE_INO */
	size_t nfiles, cap;
	struct cp_file **listed;           /* readdir order */
	size_t nlisted, listed_cap;
};

static unsigned hash_id(const char *id)
{
	unsigned h = 2166136261u;

	while (*id)
		h = (h ^ (unsigned char)(*id++ | 0x20)) * 16777619u;
	return h % NBUCKETS;
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
	pthread_mutex_init(&files->lock, NULL);
	pthread_cond_init(&files->changed, NULL);
	return files;
}

void cp_files_free(struct cp_files *files)
{
	size_t i;

	if (!files)
		return;
	for (i = 0; i < files->nfiles; i++) {
		free(files->by_ino[i]->url);
		free(files->by_ino[i]);
	}
	free(files->by_ino);
	free(files->listed);
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
	struct cp_file *f = files->buckets[hash_id(id)];

	while (f && strcasecmp(f->id, id) != 0)
		f = f->hnext;
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
}

static void seed_from_meta(struct cp_files *files, struct cp_file *f)
{
	struct cp_meta_record rec;

	if (!files->meta || cp_meta_get(files->meta, f->id, &rec) < 0)
		return;
	if (rec.size >= 0 && rec.etag[0]) {
		f->size = rec.size;
		snprintf(f->etag, sizeof(f->etag), "%s", rec.etag);
	}
	if (rec.mtime > 0)
		f->mtime = rec.mtime;
	if (rec.created_at >= 0)
		f->created_at = rec.created_at;
	if (rec.content_type[0])
		snprintf(f->content_type, sizeof(f->content_type), "%s",
			 rec.content_type);
	if (rec.name[0])
		snprintf(f->name, sizeof(f->name), "%s", rec.name);
}

/* Called with the lock held. */
static struct cp_file *add_locked(struct cp_files *files, const char *id)
{
	struct cp_file *f = find_locked(files, id);
	unsigned b;

	if (f)
		return f;
	if (files->nfiles == files->cap) {
		size_t cap = files->cap ? 2 * files->cap : 256;
		struct cp_file **n = realloc(files->by_ino, cap * sizeof(*n));

		if (!n)
			return NULL;
		files->by_ino = n;
		files->cap = cap;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	snprintf(f->id, sizeof(f->id), "%s", id);
	f->ino = FIRST_FILE_INO + files->nfiles;
	f->size = -1;
	f->created_at = -1;
	seed_from_meta(files, f);
	files->by_ino[files->nfiles++] = f;
	b = hash_id(id);
	f->hnext = files->buckets[b];
	files->buckets[b] = f;
	return f;
}

void cp_files_add_manifest(struct cp_files *files,
			   const struct cp_manifest_entry *e)
{
	struct cp_file *f;

	pthread_mutex_lock(&files->lock);
	f = add_locked(files, e->id);
	if (f) {
		/* The manifest's size stands until a probe says otherwise. */
		if (f->size < 0 && e->size >= 0)
			f->size = e->size;
		if (e->created_at >= 0)
			f->created_at = e->created_at;
		if (e->name && !f->name[0])
			snprintf(f->name, sizeof(f->name), "%s", e->name);
		if (e->content_type && !f->content_type[0])
			snprintf(f->content_type, sizeof(f->content_type),
				 "%s", e->content_type);
		list_locked(files, f);
	}
	pthread_mutex_unlock(&files->lock);
}

struct cp_file *cp_files_get(struct cp_files *files, const char *id)
{
	struct cp_file *f;

	pthread_mutex_lock(&files->lock);
	f = add_locked(files, id);
	pthread_mutex_unlock(&files->lock);
	return f;
}

struct cp_file *cp_files_by_ino(struct cp_files *files, uint64_t ino)
{
	struct cp_file *f = NULL;

	pthread_mutex_lock(&files->lock);
	if (ino >= FIRST_FILE_INO && ino - FIRST_FILE_INO < files->nfiles)
		f = files->by_ino[ino - FIRST_FILE_INO];
	pthread_mutex_unlock(&files->lock);
	return f;
}

static int wait_locked(struct cp_files *files, double deadline)
{
	struct timespec ts;

	cp_deadline_timespec(deadline, &ts);
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
		    (!need_probe || file->probed || file->etag[0])) {
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

static void persist(struct cp_files *files, struct cp_file *f)
{
	struct cp_meta_record rec;

	if (!files->meta)
		return;
	cp_meta_record_init(&rec, f->id);
	rec.size = f->size;
	rec.mtime = f->mtime;
	rec.created_at = f->created_at;
	snprintf(rec.etag, sizeof(rec.etag), "%s", f->etag);
	snprintf(rec.content_type, sizeof(rec.content_type), "%s",
		 f->content_type);
	snprintf(rec.name, sizeof(rec.name), "%s", f->name);
	cp_meta_put(files->meta, &rec);
}

void cp_files_end_resolve(struct cp_files *files, struct cp_file *file,
			  const struct cp_object_info *info, int err)
{
	int save = 0;

	pthread_mutex_lock(&files->lock);
	file->resolving = 0;
	if (!err && info) {
		file->size = info->total;
		file->probed = 1;
		snprintf(file->etag, sizeof(file->etag), "%s", info->etag);
		if (info->last_modified)
			file->mtime = info->last_modified;
		if (info->content_type[0])
			snprintf(file->content_type,
				 sizeof(file->content_type), "%s",
				 info->content_type);
		if (info->filename[0] && !file->name[0])
			snprintf(file->name, sizeof(file->name), "%s",
				 info->filename);
		file->neg_err = 0;
		list_locked(files, file);
		save = 1;
	} else if (err == -ENOENT) {
		file->neg_err = ENOENT;
		file->neg_until = cp_now() + files->cfg->neg_ttl;
	}
	pthread_cond_broadcast(&files->changed);
	pthread_mutex_unlock(&files->lock);
	/* Outside the lock: a disk write.  The fields read are stable
	 * enough for a record (a racing change re-persists later). */
	if (save)
		persist(files, file);
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
	memcpy(view->etag, file->etag, sizeof(view->etag));
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
		file->etag[0] = '\0';
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
	st->st_uid = cfg->has_uid ? cfg->uid : getuid();
	st->st_gid = cfg->has_gid ? cfg->gid : getgid();
	st->st_blksize = CP_BLOCK_SIZE;
	pthread_mutex_lock(&files->lock);
	st->st_size = file->size > 0 ? file->size : 0;
	if (file->mtime)
		st->st_mtime = file->mtime;
	else if (file->created_at >= 0)
		st->st_mtime = file->created_at;
	else
		st->st_mtime = files->mount_time;
	pthread_mutex_unlock(&files->lock);
	st->st_blocks = (st->st_size + 511) / 512;
	st->st_atime = st->st_ctime = st->st_mtime;
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
	const char *src = "";

	pthread_mutex_lock(&files->lock);
	if (strcmp(field, "name") == 0)
		src = file->name;
	else if (strcmp(field, "content_type") == 0)
		src = file->content_type;
	else if (strcmp(field, "etag") == 0)
		src = file->etag;
	snprintf(buf, len, "%s", src);
	pthread_mutex_unlock(&files->lock);
	return strlen(buf);
}
