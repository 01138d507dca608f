/*
 * listing.c - the persisted discovery listing (see listing.h).
 */
#include "listing.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "durable.h"
#include "util.h"

#define MAGIC "cpfs-listing"
#define OUT_BUF (64 << 10)
#define MAX_FIELDS 8

/* ---- writing ---- */

struct cp_listing_writer {
	int fd;
	int err;
	char tmp[PATH_MAX];
	char path[PATH_MAX];
	size_t files, pages;
	size_t len;
	char buf[OUT_BUF];
};

static void flush(struct cp_listing_writer *w)
{
	if (!w->err && w->len)
		w->err = cp_durable_write_all(w->fd, w->buf, w->len);
	w->len = 0;
}

static void put(struct cp_listing_writer *w, const char *s, size_t n)
{
	while (n && !w->err) {
		size_t room = sizeof(w->buf) - w->len;
		size_t k = n < room ? n : room;

		memcpy(w->buf + w->len, s, k);
		w->len += k;
		s += k;
		n -= k;
		if (w->len == sizeof(w->buf))
			flush(w);
	}
}

static void putf(struct cp_listing_writer *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void putf(struct cp_listing_writer *w, const char *fmt, ...)
{
	char line[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(w, line, (size_t)n < sizeof(line) ? (size_t)n
						       : sizeof(line) - 1);
}

/* A space, then @s escaped (util.h; "-" when NULL, "%2D" for "-"). */
static void put_str(struct cp_listing_writer *w, const char *s)
{
	char esc[3 * CP_LISTING_MAX_STR + 1];
	size_t n;

	if (!s) {
		put(w, " -", 2);
		return;
	}
	if (strcmp(s, "-") == 0) {
		put(w, " %2D", 4);
		return;
	}
	n = cp_pct_escape(esc, 0, sizeof(esc), s);
	if (n == sizeof(esc)) {
		w->err = -ENAMETOOLONG;
		return;
	}
	put(w, " ", 1);
	put(w, esc, n);
}

struct cp_listing_writer *cp_listing_begin(const char *dir,
					   const char *path,
					   double complete_at, int *err)
{
	struct cp_listing_writer *w = calloc(1, sizeof(*w));

	if (!w) {
		*err = -ENOMEM;
		return NULL;
	}
	snprintf(w->path, sizeof(w->path), "%s", path);
	w->fd = cp_durable_temp(dir, 0, "discovery", w->tmp, sizeof(w->tmp));
	if (w->fd < 0) {
		*err = w->fd;
		free(w);
		return NULL;
	}
	putf(w, MAGIC " %d %.0f\n", CP_LISTING_VERSION, complete_at);
	return w;
}

int cp_listing_file(struct cp_listing_writer *w,
		    const struct cp_listing_file *f)
{
	putf(w, "f %s %" PRId64 " %" PRId32 " %" PRId32, f->id, f->size,
	     f->width, f->height);
	put_str(w, f->url);
	put_str(w, f->name);
	put(w, "\n", 1);
	w->files++;
	return w->err;
}

int cp_listing_page(struct cp_listing_writer *w, const char *id,
		    const char *name, const char (*files)[CP_ID_BUF],
		    size_t nfiles)
{
	size_t i;

	putf(w, "p %s", id);
	put_str(w, name);
	put(w, " ", 1);
	for (i = 0; i < nfiles; i++) {
		if (i)
			put(w, ",", 1);
		put(w, files[i], strlen(files[i]));
	}
	if (!nfiles)
		put(w, "-", 1);
	put(w, "\n", 1);
	w->pages++;
	return w->err;
}

int cp_listing_end(struct cp_listing_writer *w, int commit)
{
	int err;

	if (!w)
		return -EINVAL;
	putf(w, "end %zu %zu\n", w->files, w->pages);
	flush(w);
	err = w->err;
	if (commit && !err) {
		err = cp_durable_commit(w->fd, w->tmp, w->path);
	} else {
		close(w->fd);
		unlink(w->tmp);
		if (!err)
			err = -ECANCELED;
	}
	free(w);
	return err;
}

/* ---- reading ---- */

/* Decodes @s in place; NULL for "-"; @bad set when it is not sane. */
static const char *unescape(char *s, int *bad)
{
	if (strcmp(s, "-") == 0)
		return NULL;
	if (cp_pct_unescape(s, strlen(s) + 1, s, strlen(s)) < 0) {
		*bad = 1;
		return NULL;
	}
	return s;
}

/* Splits @line at single spaces into at most @max fields. */
static int split(char *line, char **field, int max)
{
	int n = 0;
	char *save = NULL, *tok;

	for (tok = strtok_r(line, " ", &save); tok && n < max;
	     tok = strtok_r(NULL, " ", &save))
		field[n++] = tok;
	return tok ? -1 : n;
}

/* A whole number in [@min, @max]. */
static int number(const char *s, long long min, long long max,
		  long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int take_file(char **fld, int n, const struct cp_listing_sink *sink)
{
	struct cp_listing_file f;
	long long size, width, height;
	int bad = 0;

	if (n != 7 || !cp_objectid_valid(fld[1]) ||
	    number(fld[2], -1, 1LL << 50, &size) ||
	    number(fld[3], -1, 1000000, &width) ||
	    number(fld[4], -1, 1000000, &height))
		return -1;
	f.id = fld[1];
	f.size = size;
	f.width = (int32_t)width;
	f.height = (int32_t)height;
	f.url = unescape(fld[5], &bad);
	f.name = unescape(fld[6], &bad);
	if (bad || (f.url && cp_url_check(f.url, NULL, 0) != 0) ||
	    (f.name && (!*f.name || strlen(f.name) > 255)))
		return -1;
	return sink->file(sink->arg, &f);
}

static int take_page(char **fld, int n, const struct cp_listing_sink *sink)
{
	char(*ids)[CP_ID_BUF] = NULL;
	const char *name;
	size_t count = 1, k = 0;
	char *p, *save = NULL, *tok;
	int bad = 0, ret;

	if (n != 4 || !cp_objectid_valid(fld[1]))
		return -1;
	name = unescape(fld[2], &bad);
	if (bad || (name && strlen(name) > 255))
		return -1;
	if (strcmp(fld[3], "-") != 0) {
		for (p = fld[3]; *p; p++)
			count += *p == ',';
		ids = calloc(count, sizeof(*ids));
		if (!ids)
			return -1;
		for (tok = strtok_r(fld[3], ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save))
			if (cp_objectid_valid(tok) && k < count)
				snprintf(ids[k++], CP_ID_BUF, "%s", tok);
			else
				bad = 1;
	}
	ret = bad ? -1
		  : sink->page(sink->arg, fld[1], name,
			       (const char(*)[CP_ID_BUF])ids, k);
	free(ids);
	return ret;
}

/* Reads the trailer's counts from the end of @fd's file: 0 or -EINVAL. */
static int trailer(int fd, off_t size, long long *files, long long *pages)
{
	char tail[96], *nl;
	off_t from = size > (off_t)sizeof(tail) - 1
			     ? size - (off_t)sizeof(tail) + 1
			     : 0;
	ssize_t n = pread(fd, tail, (size_t)(size - from), from);

	if (n <= 0 || n != size - from || tail[n - 1] != '\n')
		return -EINVAL;
	tail[n - 1] = '\0';
	nl = strrchr(tail, '\n');
	if (!nl)
		return -EINVAL;
	if (sscanf(nl + 1, "end %lld %lld", files, pages) != 2 || *files < 0 ||
	    *pages < 0)
		return -EINVAL;
	return 0;
}

int cp_listing_read(const char *path, const struct cp_listing_sink *sink,
		    double *complete_at, size_t *files, unsigned *bad)
{
	long long want_files, want_pages, version, at;
	size_t nfiles = 0, npages = 0, cap = 0;
	char *line = NULL, *fld[MAX_FIELDS];
	struct stat st;
	ssize_t len;
	FILE *in;
	int fd, n, ret = 1;

	*bad = 0;
	*files = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > CP_LISTING_MAX_BYTES ||
	    trailer(fd, st.st_size, &want_files, &want_pages) < 0) {
		close(fd);
		return -EINVAL;
	}
	in = fdopen(fd, "r");
	if (!in) {
		close(fd);
		return -ENOMEM;
	}
	len = getline(&line, &cap, in);
	if (len <= 0 || line[len - 1] != '\n') {
		ret = -EINVAL;
		goto out;
	}
	line[len - 1] = '\0';
	n = split(line, fld, MAX_FIELDS);
	if (n != 3 || strcmp(fld[0], MAGIC) != 0 ||
	    number(fld[1], 0, INT_MAX, &version) ||
	    version != CP_LISTING_VERSION ||
	    number(fld[2], 0, 100000000000LL, &at)) {
		ret = -EINVAL;
		goto out;
	}
	*complete_at = (double)at;
	while ((len = getline(&line, &cap, in)) > 0) {
		if (line[len - 1] != '\n')
			break; /* the trailer ends the file with a newline */
		line[len - 1] = '\0';
		n = split(line, fld, MAX_FIELDS);
		if (n > 0 && strcmp(fld[0], "end") == 0)
			break;
		if (n > 0 && strcmp(fld[0], "f") == 0) {
			nfiles++;
			*bad += take_file(fld, n, sink) < 0;
		} else if (n > 0 && strcmp(fld[0], "p") == 0) {
			npages++;
			*bad += take_page(fld, n, sink) < 0;
		} else {
			(*bad)++;
		}
	}
	/* Records lost or added in the middle count as bad too. */
	if ((long long)nfiles != want_files || (long long)npages != want_pages)
		(*bad)++;
	*files = nfiles;
out:
	free(line);
	fclose(in);
	return ret;
}
