/*
 * meta.c - per-file metadata persisted across mounts.
 *
 * Owns the directory <cache_dir>/meta: one record per file id, named after
 * the id.  A record is a short text file:
 *
 *	cpfs-meta 1
 *	id=5f0c...
 *	size=1234
 *	mtime=1700000000
 *	created_at=1690000000
 *	etag=%22abc%22
 *	content_type=application/pdf
 *	name=report%0Afinal.pdf
 *	sum=0123456789abcdef
 *
 * String values are percent-escaped (util.h's cp_pct_escape(): every byte
 * outside printable ASCII, and '%', '=', ',' and space, becomes %XX), so
 * any name round-trips.  The last line
 * is the FNV-1a 64 hash of every byte before it; a record whose hash, version
 * line or fields do not check out is treated as absent and replaced by
 * the next put (a directory or file standing where the record or the
 * meta directory belongs is removed then).  Records are written with
 * durable.c's temp-file-and-rename, so readers (in this or another
 * mount) see either the old or the new record, never a mix.  No fsync:
 * losing a record in a crash only costs an API call later.
 *
 * Thread safety: the store holds no mutable state but its health flags
 * (atomics), so get and put run concurrently from any thread.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "durable.h"
#include "idindex.h"
#include "log.h"
#include "meta.h"
#include "stats.h"
#include "util.h"

#define META_VERSION_LINE "cpfs-meta 1"
#define META_MAX_RECORD 4096 /* far above the largest valid record */
#define STORE "metadata store"

/* The ids that had a record when a bulk load began. */
struct bulk_id {
	char id[CP_DURABLE_ID_MAX + 1]; /* first: idindex.h's layout */
};

struct cp_meta {
	char dir[PATH_MAX];
	struct cp_stats *stats; /* may be NULL */
	struct cp_durable_health health;
	/* Between cp_meta_bulk_begin() and _end() only (one thread). */
	int bulk;               /* ids is the listing to consult */
	struct bulk_id *ids;
	size_t nids, ids_cap;
	struct cp_idindex index;
};

void cp_meta_record_init(struct cp_meta_record *rec, const char *id)
{
	memset(rec, 0, sizeof(*rec));
	if (id)
		snprintf(rec->id, sizeof(rec->id), "%s", id);
	rec->size = -1;
	rec->mtime = -1;
	rec->created_at = -1;
}

struct cp_meta *cp_meta_open(const char *cache_dir, struct cp_stats *stats)
{
	struct cp_meta *meta = calloc(1, sizeof(*meta));
	int err;

	if (!meta)
		return NULL;
	meta->stats = stats;
	cp_durable_health_init(&meta->health);

	err = cp_cache_path(meta->dir, sizeof(meta->dir), cache_dir, "meta");
	if (err) {
		snprintf(meta->dir, sizeof(meta->dir), "%s",
			 cache_dir ? cache_dir : "(no HOME)");
		cp_durable_disable(&meta->health, STORE, meta->dir,
				   "no usable directory", -err);
		return meta;
	}
	err = cp_mkdir_p(meta->dir);
	if (!err)
		err = cp_dir_writable(meta->dir);
	if (err)
		cp_durable_disable(&meta->health, STORE, meta->dir,
				   "cannot create or write", -err);
	return meta;
}

void cp_meta_close(struct cp_meta *meta)
{
	if (meta)
		cp_meta_bulk_end(meta);
	free(meta);
}

/* Adds @name to the bulk listing; 0 or -ENOMEM. */
static int bulk_add(struct cp_meta *meta, const char *name)
{
	if (cp_idindex_find(&meta->index, meta->ids, sizeof(*meta->ids),
			    name) >= 0)
		return 0; /* the same id in another case */
	if (meta->nids == meta->ids_cap) {
		size_t cap = meta->ids_cap ? 2 * meta->ids_cap : 1024;
		struct bulk_id *ids = realloc(meta->ids, cap * sizeof(*ids));

		if (!ids)
			return -ENOMEM;
		meta->ids = ids;
		meta->ids_cap = cap;
	}
	/* cp_durable_id_ok() kept it within the buffer */
	memcpy(meta->ids[meta->nids].id, name, strlen(name) + 1);
	if (cp_idindex_add(&meta->index, meta->ids, sizeof(*meta->ids)))
		return -ENOMEM;
	meta->nids++;
	return 0;
}

void cp_meta_bulk_begin(struct cp_meta *meta)
{
	struct dirent *de;
	DIR *d;
	int ok = 1;

	if (!meta || meta->bulk || !cp_durable_can_read(&meta->health))
		return;
	d = opendir(meta->dir);
	if (!d)
		return; /* then every get looks for itself */
	while (ok && (de = readdir(d)))
		if (cp_durable_id_ok(de->d_name))
			ok = bulk_add(meta, de->d_name) == 0;
	closedir(d);
	if (ok)
		meta->bulk = 1;
	else
		cp_meta_bulk_end(meta);
}

void cp_meta_bulk_end(struct cp_meta *meta)
{
	meta->bulk = 0;
	cp_idindex_free(&meta->index);
	free(meta->ids);
	meta->ids = NULL;
	meta->nids = meta->ids_cap = 0;
}

static int record_path(const struct cp_meta *meta, const char *id, char *out,
		       size_t len)
{
	int n = snprintf(out, len, "%s/%s", meta->dir, id);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int get_int64(int64_t *out, const char *s, size_t len)
{
	char buf[32];
	char *end;
	long long v;

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (errno || *end || v < -1)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Renders @rec into @out; returns the length, or 0 if it does not fit. */
static size_t format_record(const struct cp_meta_record *rec, char *out,
			    size_t cap)
{
	size_t pos;
	int n;

	n = snprintf(out, cap,
		     META_VERSION_LINE "\nid=%s\nsize=%" PRId64
				       "\nmtime=%" PRId64
				       "\ncreated_at=%" PRId64 "\netag=",
		     rec->id, rec->size, rec->mtime, rec->created_at);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	pos = cp_pct_escape(out, (size_t)n, cap, rec->etag);
	if (pos + 14 >= cap)
		return 0;
	memcpy(out + pos, "\ncontent_type=", 14);
	pos = cp_pct_escape(out, pos + 14, cap, rec->content_type);
	if (pos + 6 >= cap)
		return 0;
	memcpy(out + pos, "\nname=", 6);
	pos = cp_pct_escape(out, pos + 6, cap, rec->name);
	if (pos + 1 >= cap)
		return 0;
	out[pos++] = '\n';
	n = snprintf(out + pos, cap - pos, "sum=%016" PRIx64 "\n",
		     cp_fnv1a64(out, pos));
	if (n < 0 || (size_t)n >= cap - pos)
		return 0;
	return pos + (size_t)n;
}

/* Parses a record read from disk; 0 or -EINVAL if anything is off. */
static int parse_record(char *buf, size_t len, struct cp_meta_record *rec)
{
	enum { F_ID = 1, F_SIZE = 2, F_MTIME = 4, F_CREATED = 8 };
	const size_t vlen = sizeof(META_VERSION_LINE "\n") - 1;
	unsigned int seen = 0;
	char *body_end, *p, *end, *eq;
	char sumtext[17];
	uint64_t sum;
	int err = 0;

	/* The checksum line is last and covers everything before it. */
	if (len < vlen + 21 || buf[len - 1] != '\n')
		return -EINVAL;
	body_end = buf + len - 21; /* "sum=" 16 hex "\n" */
	if (memcmp(body_end, "sum=", 4) || body_end[-1] != '\n')
		return -EINVAL;
	memcpy(sumtext, body_end + 4, 16);
	sumtext[16] = '\0';
	for (p = sumtext; *p; p++)
		if (!isxdigit((unsigned char)*p))
			return -EINVAL;
	sum = strtoull(sumtext, NULL, 16);
	if (sum != cp_fnv1a64(buf, (size_t)(body_end - buf)))
		return -EINVAL;
	if (memcmp(buf, META_VERSION_LINE "\n", vlen))
		return -EINVAL;

	cp_meta_record_init(rec, NULL);
	for (p = buf + vlen; p < body_end && !err; p = end + 1) {
		const char *val;
		size_t klen, len2;

		end = memchr(p, '\n', (size_t)(body_end - p));
		if (!end)
			return -EINVAL;
		eq = memchr(p, '=', (size_t)(end - p));
		if (!eq)
			return -EINVAL;
		klen = (size_t)(eq - p);
		val = eq + 1;
		len2 = (size_t)(end - val);
#define KEY_IS(k) (klen == sizeof(k) - 1 && !memcmp(p, k, klen))
		if (KEY_IS("id")) {
			err = cp_pct_unescape(rec->id, sizeof(rec->id), val, len2);
			seen |= F_ID;
		} else if (KEY_IS("size")) {
			err = get_int64(&rec->size, val, len2);
			seen |= F_SIZE;
		} else if (KEY_IS("mtime")) {
			err = get_int64(&rec->mtime, val, len2);
			seen |= F_MTIME;
		} else if (KEY_IS("created_at")) {
			err = get_int64(&rec->created_at, val, len2);
			seen |= F_CREATED;
		} else if (KEY_IS("etag")) {
			err = cp_pct_unescape(rec->etag, sizeof(rec->etag), val,
					  len2);
		} else if (KEY_IS("content_type")) {
			err = cp_pct_unescape(rec->content_type,
					  sizeof(rec->content_type), val, len2);
		} else if (KEY_IS("name")) {
			err = cp_pct_unescape(rec->name, sizeof(rec->name), val,
					  len2);
		}
		/* Unknown keys are skipped: a later writer may add some. */
#undef KEY_IS
	}
	if (err)
		return err;
	if (seen != (F_ID | F_SIZE | F_MTIME | F_CREATED))
		return -EINVAL;
	return 0;
}

int cp_meta_get(struct cp_meta *meta, const char *id,
		struct cp_meta_record *rec)
{
	char path[PATH_MAX];
	char buf[META_MAX_RECORD];
	struct cp_meta_record tmp;
	size_t len = 0;
	int fd;

	if (!meta || !cp_durable_can_read(&meta->health) ||
	    !cp_durable_id_ok(id))
		return -ENOENT;
	if (meta->bulk && cp_idindex_find(&meta->index, meta->ids,
					  sizeof(*meta->ids), id) < 0)
		return -ENOENT;
	if (record_path(meta, id, path, sizeof(path)))
		return -ENOENT;
	if (meta->stats)
		cp_stats_inc(meta->stats, meta_reads);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -ENOENT;
	while (len < sizeof(buf)) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	/* A full buffer means an oversized record: not one of ours. */
	if (len == 0 || len >= sizeof(buf) || parse_record(buf, len, &tmp) ||
	    strcmp(tmp.id, id)) {
		cp_dbg("metadata record %s ignored (corrupt)", id);
		return -ENOENT;
	}
	*rec = tmp;
	if (meta->stats)
		cp_stats_inc(meta->stats, meta_hits);
	return 0;
}

static bool field_ok(const char *s, size_t size)
{
	return strnlen(s, size) < size;
}

int cp_meta_put(struct cp_meta *meta, const struct cp_meta_record *rec)
{
	char path[PATH_MAX];
	char buf[META_MAX_RECORD];
	size_t len;
	int err;

	if (!meta || !cp_durable_can_write(&meta->health))
		return 0;
	if (!field_ok(rec->id, sizeof(rec->id)) || !cp_durable_id_ok(rec->id) ||
	    !field_ok(rec->etag, sizeof(rec->etag)) ||
	    !field_ok(rec->content_type, sizeof(rec->content_type)) ||
	    !field_ok(rec->name, sizeof(rec->name)) || rec->size < -1 ||
	    rec->mtime < -1 || rec->created_at < -1)
		return -EINVAL;
	len = format_record(rec, buf, sizeof(buf));
	if (len == 0)
		return -EINVAL;
	err = record_path(meta, rec->id, path, sizeof(path));
	if (!err)
		err = cp_durable_replace(meta->dir, 1, rec->id, path, buf,
					 len);
	if (err)
		cp_durable_failed(&meta->health, STORE, meta->dir,
				  "cannot write", -err);
	return err;
}
