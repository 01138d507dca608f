/*
 * test_meta.c - the persistent metadata store: round trips, damaged
 * records, awkward names, disabled mode, sharing a directory.
 *
 * Each test works in its own directory under /tmp, removed afterwards.
 * The read-only and full-disk cases mount a small tmpfs when allowed
 * (tests usually run as root) and are skipped otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meta.h"
#include "stats.h"
#include "tmpdir.h"

#define ID1 "5f0c1e2d3b4a59687766aa01"
#define ID2 "5f0c1e2d3b4a59687766aa02"

struct fixture {
	char dir[64];	 /* the cache_dir handed to cp_meta_open */
	char path[4200]; /* scratch */
	struct cp_stats stats;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	if (tmpdir_make(f->dir, sizeof(f->dir), "meta") < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static const char *record_file(struct fixture *f, const char *id)
{
	snprintf(f->path, sizeof(f->path), "%s/meta/%s", f->dir, id);
	return f->path;
}

static void fill(struct cp_meta_record *rec, const char *id)
{
	cp_meta_record_init(rec, id);
	rec->size = 123456789012LL;
	rec->mtime = 1700000000;
	rec->created_at = 1690000000;
	strcpy(rec->etag, "\"d41d8cd98f00b204e9800998ecf8427e\"");
	strcpy(rec->content_type, "application/pdf; charset=binary");
	strcpy(rec->name, "report.pdf");
}

static void assert_same(const struct cp_meta_record *a,
			const struct cp_meta_record *b)
{
	assert_string_equal(a->id, b->id);
	assert_int_equal(a->size, b->size);
	assert_int_equal(a->mtime, b->mtime);
	assert_int_equal(a->created_at, b->created_at);
	assert_string_equal(a->etag, b->etag);
	assert_string_equal(a->content_type, b->content_type);
	assert_string_equal(a->name, b->name);
}

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static size_t read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, len);
	close(fd);
	assert_true(n >= 0);
	return (size_t)n;
}

static void test_init(void **state)
{
	struct cp_meta_record rec;

	(void)state;
	memset(&rec, 'x', sizeof(rec));
	cp_meta_record_init(&rec, ID1);
	assert_string_equal(rec.id, ID1);
	assert_int_equal(rec.size, -1);
	assert_int_equal(rec.mtime, -1);
	assert_int_equal(rec.created_at, -1);
	assert_string_equal(rec.etag, "");
	assert_string_equal(rec.content_type, "");
	assert_string_equal(rec.name, "");
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct cp_meta_record in, out;
	struct cp_meta *m = cp_meta_open(f->dir, &f->stats);
	struct stat st;

	assert_non_null(m);
	fill(&in, ID1);
	assert_int_equal(cp_meta_put(m, &in), 0);
	assert_int_equal(stat(record_file(f, ID1), &st), 0);
	assert_true(S_ISREG(st.st_mode));
	memset(&out, 0, sizeof(out));
	assert_int_equal(cp_meta_get(m, ID1, &out), 0);
	assert_same(&in, &out);
	assert_int_equal(f->stats.meta_hits, 1);

	/* unknowns survive as unknowns */
	cp_meta_record_init(&in, ID2);
	assert_int_equal(cp_meta_put(m, &in), 0);
	assert_int_equal(cp_meta_get(m, ID2, &out), 0);
	assert_same(&in, &out);

	/* a put replaces */
	fill(&in, ID1);
	in.size = 0;
	strcpy(in.etag, "\"new\"");
	assert_int_equal(cp_meta_put(m, &in), 0);
	assert_int_equal(cp_meta_get(m, ID1, &out), 0);
	assert_same(&in, &out);
	assert_int_equal(f->stats.meta_hits, 3);
	cp_meta_close(m);

	/* and a new mount finds it all */
	m = cp_meta_open(f->dir, NULL);
	assert_int_equal(cp_meta_get(m, ID1, &out), 0);
	assert_same(&in, &out);
	cp_meta_close(m);

	/* no temporary files left behind */
	snprintf(f->path, sizeof(f->path), "ls -A %s/meta | grep -q '^\\.'",
		 f->dir);
	assert_int_not_equal(system(f->path), 0);
}

static void test_absent(void **state)
{
	struct fixture *f = *state;
	struct cp_meta_record out;
	struct cp_meta *m = cp_meta_open(f->dir, &f->stats);

	assert_int_equal(cp_meta_get(m, ID1, &out), -ENOENT);
	assert_int_equal(cp_meta_get(m, "", &out), -ENOENT);
	assert_int_equal(cp_meta_get(m, "../../etc/passwd", &out), -ENOENT);
	assert_int_equal(cp_meta_get(m, ID1 "0", &out), -ENOENT);
	assert_int_equal(f->stats.meta_hits, 0);
	cp_meta_close(m);
}

static void test_bad_put(void **state)
{
	struct fixture *f = *state;
	struct cp_meta_record in;
	struct cp_meta *m = cp_meta_open(f->dir, NULL);

	fill(&in, "../x");
	assert_int_equal(cp_meta_put(m, &in), -EINVAL);
	fill(&in, ID1);
	memset(in.name, 'n', sizeof(in.name)); /* not terminated */
	assert_int_equal(cp_meta_put(m, &in), -EINVAL);
	fill(&in, ID1);
	in.size = -5;
	assert_int_equal(cp_meta_put(m, &in), -EINVAL);
	cp_meta_close(m);
}

static void test_corrupt(void **state)
{
	struct fixture *f = *state;
	struct cp_meta_record in, out;
	struct cp_meta *m = cp_meta_open(f->dir, &f->stats);
	char good[4096], bad[4096];
	size_t len, i;

	fill(&in, ID1);
	assert_int_equal(cp_meta_put(m, &in), 0);
	len = read_file(record_file(f, ID1), good, sizeof(good));
	assert_true(len > 40);

	/* every truncation is ignored */
	for (i = 0; i < len; i++) {
		write_file(record_file(f, ID1), good, i);
		assert_int_equal(cp_meta_get(m, ID1, &out), -ENOENT);
	}
	/* every single flipped bit is ignored */
	for (i = 0; i < len; i++) {
		memcpy(bad, good, len);
		bad[i] ^= 0x04;
		write_file(record_file(f, ID1), bad, len);
		assert_int_equal(cp_meta_get(m, ID1, &out), -ENOENT);
	}
	/* trailing garbage */
	memcpy(bad, good, len);
	memcpy(bad + len, "x=y\n", 4);
	write_file(record_file(f, ID1), bad, len + 4);
	assert_int_equal(cp_meta_get(m, ID1, &out), -ENOENT);
	/* a huge file */
	memset(bad, 'a', sizeof(bad));
	write_file(record_file(f, ID1), bad, sizeof(bad));
	assert_int_equal(cp_meta_get(m, ID1, &out), -ENOENT);
	/* a record of another id under this name */
	fill(&in, ID2);
	assert_int_equal(cp_meta_put(m, &in), 0);
	len = read_file(record_file(f, ID2), bad, sizeof(bad));
	write_file(record_file(f, ID1), bad, len);
	assert_int_equal(cp_meta_get(m, ID1, &out), -ENOENT);
	assert_int_equal(f->stats.meta_hits, 0);

	/* the next put rewrites it */
	fill(&in, ID1);
	assert_int_equal(cp_meta_put(m, &in), 0);
	assert_int_equal(cp_meta_get(m, ID1, &out), 0);
	assert_same(&in, &out);
	cp_meta_close(m);
}

static void test_other_version(void **state)
{
	struct fixture *f = *state;
	struct cp_meta_record out;
	struct cp_meta *m = cp_meta_open(f->dir, NULL);
	/* well formed, but a format this code does not know */
	static const char rec[] = "cpfs-meta 2\nid=" ID1 "\nsize=1\nmtime=1\n"
				  "created_at=1\nsum=0000000000000000\n";

	write_file(record_file(f, ID1), rec, sizeof(rec) - 1);
	assert_int_equal(cp_meta_get(m, ID1, &out), -ENOENT);
	cp_meta_close(m);
}

static void test_awkward_names(void **state)
{
	struct fixture *f = *state;
	static const char *const names[] = {
		"line one\nline two",
		"a=b=c",
		"=",
		"100% sure %41%",
		"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\x84.txt",
		"tab\there\rcr",
		" leading and trailing ",
		"sum=0123456789abcdef\n",
		"\x01\x7f\xff",
		"",
	};
	struct cp_meta_record in, out;
	struct cp_meta *m = cp_meta_open(f->dir, NULL);
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		fill(&in, ID1);
		strcpy(in.name, names[i]);
		strcpy(in.etag, names[i]);
		strcpy(in.content_type, names[i]);
		assert_int_equal(cp_meta_put(m, &in), 0);
		assert_int_equal(cp_meta_get(m, ID1, &out), 0);
		assert_same(&in, &out);
	}

	/* the longest values, all bytes needing escapes */
	fill(&in, ID1);
	memset(in.name, '\n', sizeof(in.name) - 1);
	memset(in.etag, '=', sizeof(in.etag) - 1);
	memset(in.content_type, 0xe9, sizeof(in.content_type) - 1);
	assert_int_equal(cp_meta_put(m, &in), 0);
	assert_int_equal(cp_meta_get(m, ID1, &out), 0);
	assert_same(&in, &out);
	cp_meta_close(m);
}

static void test_extremes(void **state)
{
	struct fixture *f = *state;
	struct cp_meta_record in, out;
	struct cp_meta *m = cp_meta_open(f->dir, NULL);

	fill(&in, ID1);
	in.size = INT64_MAX;
	in.mtime = INT64_MAX;
	in.created_at = 0;
	assert_int_equal(cp_meta_put(m, &in), 0);
	assert_int_equal(cp_meta_get(m, ID1, &out), 0);
	assert_same(&in, &out);
	cp_meta_close(m);
}

/* Opens a store whose directory is under a regular file: disabled. */
static void check_disabled(const char *cache_dir)
{
	struct cp_meta_record in, out;
	struct cp_meta *m = cp_meta_open(cache_dir, NULL);

	assert_non_null(m);
	fill(&in, ID1);
	assert_int_equal(cp_meta_put(m, &in), 0);
	assert_int_equal(cp_meta_put(m, &in), 0);
	assert_int_equal(cp_meta_get(m, ID1, &out), -ENOENT);
	cp_meta_close(m);
}

static void test_disabled(void **state)
{
	struct fixture *f = *state;

	check_disabled("/etc/passwd/x");
	snprintf(f->path, sizeof(f->path), "%s/file", f->dir);
	write_file(f->path, "x", 1);
	strcat(f->path, "/cache");
	check_disabled(f->path);
}

static void test_read_only_mount(void **state)
{
	struct fixture *f = *state;

	if (mount("tmpfs", f->dir, "tmpfs", MS_RDONLY, "size=64k")) {
		skip();
		return;
	}
	check_disabled(f->dir);
	umount(f->dir);
}

static void test_full_disk(void **state)
{
	struct fixture *f = *state;
	struct cp_meta_record in, out;
	struct cp_meta *m;
	char id[25];
	int i, err = 0;

	if (mount("tmpfs", f->dir, "tmpfs", 0, "size=16k,nr_inodes=12")) {
		skip();
		return;
	}
	m = cp_meta_open(f->dir, NULL);
	assert_non_null(m);
	for (i = 0; i < 100 && !err; i++) {
		snprintf(id, sizeof(id), "5f0c1e2d3b4a5968776600%02d", i);
		fill(&in, id);
		err = cp_meta_put(m, &in);
	}
	assert_int_equal(err, -ENOSPC);
	/* later puts are silent no-ops; what was stored is still served */
	assert_int_equal(cp_meta_put(m, &in), 0);
	assert_int_equal(cp_meta_get(m, "5f0c1e2d3b4a596877660000", &out), 0);
	cp_meta_close(m);
	umount(f->dir);
}

static void test_dir_vanishes(void **state)
{
	struct fixture *f = *state;
	struct cp_meta_record in, out;
	struct cp_meta *m = cp_meta_open(f->dir, NULL);

	/* removed: the next put makes it again */
	snprintf(f->path, sizeof(f->path), "rm -rf %s/meta", f->dir);
	assert_int_equal(system(f->path), 0);
	fill(&in, ID1);
	assert_int_equal(cp_meta_put(m, &in), 0);
	assert_int_equal(cp_meta_get(m, ID1, &out), 0);

	/* replaced by a file: a miss, and the next put heals it */
	assert_int_equal(system(f->path), 0);
	snprintf(f->path, sizeof(f->path), "%s/meta", f->dir);
	write_file(f->path, "x", 1);
	assert_int_equal(cp_meta_get(m, ID1, &out), -ENOENT);
	assert_int_equal(cp_meta_put(m, &in), 0);
	assert_int_equal(cp_meta_get(m, ID1, &out), 0);
	assert_string_equal(out.name, in.name);
	cp_meta_close(m);
}

static void test_default_dir(void **state)
{
	struct fixture *f = *state;
	char *old_xdg = getenv("XDG_CACHE_HOME");
	char *old_home = getenv("HOME");
	struct cp_meta_record in, out;
	struct cp_meta *m;
	struct stat st;

	old_xdg = old_xdg ? strdup(old_xdg) : NULL;
	old_home = old_home ? strdup(old_home) : NULL;

	setenv("XDG_CACHE_HOME", f->dir, 1);
	m = cp_meta_open(NULL, NULL);
	fill(&in, ID1);
	assert_int_equal(cp_meta_put(m, &in), 0);
	cp_meta_close(m);
	snprintf(f->path, sizeof(f->path), "%s/cpfs/meta/%s", f->dir, ID1);
	assert_int_equal(stat(f->path, &st), 0);

	/* a relative XDG_CACHE_HOME is ignored, HOME is used */
	setenv("XDG_CACHE_HOME", "relative", 1);
	setenv("HOME", f->dir, 1);
	m = cp_meta_open(NULL, NULL);
	assert_int_equal(cp_meta_put(m, &in), 0);
	assert_int_equal(cp_meta_get(m, ID1, &out), 0);
	cp_meta_close(m);
	snprintf(f->path, sizeof(f->path), "%s/.cache/cpfs/meta/%s", f->dir,
		 ID1);
	assert_int_equal(stat(f->path, &st), 0);

	if (old_xdg)
		setenv("XDG_CACHE_HOME", old_xdg, 1);
	else
		unsetenv("XDG_CACHE_HOME");
	if (old_home)
		setenv("HOME", old_home, 1);
	else
		unsetenv("HOME");
	free(old_xdg);
	free(old_home);
}

static void test_shared_dir(void **state)
{
	struct fixture *f = *state;
	struct cp_meta_record in, out;
	struct cp_meta *a = cp_meta_open(f->dir, NULL);
	struct cp_meta *b = cp_meta_open(f->dir, NULL);

	fill(&in, ID1);
	assert_int_equal(cp_meta_put(a, &in), 0);
	assert_int_equal(cp_meta_get(b, ID1, &out), 0);
	assert_same(&in, &out);
	strcpy(in.name, "renamed");
	assert_int_equal(cp_meta_put(b, &in), 0);
	assert_int_equal(cp_meta_get(a, ID1, &out), 0);
	assert_string_equal(out.name, "renamed");
	cp_meta_close(a);
	cp_meta_close(b);
}

struct racer {
	struct cp_meta *meta;
	int n;
	int bad;
};

/* Writers alternate between two consistent records: a reader must always
 * see one of them whole. */
static void *race(void *arg)
{
	struct racer *r = arg;
	struct cp_meta_record in, out;
	int i;

	for (i = 0; i < 300; i++) {
		fill(&in, ID1);
		in.size = (i + r->n) % 2 ? 1 : 2;
		strcpy(in.name, in.size == 1 ? "one" : "two\ntwo");
		if (cp_meta_put(r->meta, &in))
			r->bad++;
		if (cp_meta_get(r->meta, ID1, &out) ||
		    strcmp(out.name, out.size == 1 ? "one" : "two\ntwo"))
			r->bad++;
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	struct fixture *f = *state;
	struct cp_meta *a = cp_meta_open(f->dir, NULL);
	struct cp_meta *b = cp_meta_open(f->dir, NULL);
	struct racer r[4];
	pthread_t t[4];
	struct cp_meta_record in;
	int i;

	fill(&in, ID1);
	assert_int_equal(cp_meta_put(a, &in), 0);
	for (i = 0; i < 4; i++) {
		r[i] = (struct racer){.meta = i % 2 ? a : b, .n = i};
		assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(r[i].bad, 0);
	}
	cp_meta_close(a);
	cp_meta_close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init),
		cmocka_unit_test_setup_teardown(test_round_trip, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_absent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_put, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_version, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_awkward_names, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_extremes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disabled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only_mount, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_full_disk, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_dir_vanishes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_default_dir, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_shared_dir, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
