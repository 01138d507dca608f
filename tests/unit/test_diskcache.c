/*
 * test_diskcache.c - the on-disk block cache: hits only for the exact
 * (id, ETag, index, length), LRU eviction under the cap, drop, reopen,
 * damaged blocks, disabled mode and concurrent use.
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
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "diskcache.h"
#include "stats.h"
#include "tmpdir.h"

#define ID1 "5f0c1e2d3b4a59687766aa01"
#define ID2 "5f0c1e2d3b4a59687766aa02"
#define ID3 "5f0c1e2d3b4a59687766aa03"
#define ETAG_A "\"0123456789abcdef0123456789abcdef\""
#define ETAG_B "\"fedcba9876543210fedcba9876543210-2\""
#define BS 4096 /* block size used by most tests */
#define HDR 40	/* on-disk header, before the ETag */

struct fixture {
	char dir[64];
	char path[4200]; /* scratch */
	struct cp_stats stats;
	unsigned char in[BS], out[BS];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	if (tmpdir_make(f->dir, sizeof(f->dir), "dc") < 0)
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

/* Block contents that depend on what they are, to catch mix-ups. */
static void pattern(unsigned char *buf, size_t len, const char *id,
		    const char *etag, uint64_t index)
{
	uint32_t x = 2166136261u ^ (uint32_t)index;
	size_t i;

	for (i = 0; id[i]; i++)
		x = (x ^ (unsigned char)id[i]) * 16777619u;
	for (i = 0; etag[i]; i++)
		x = (x ^ (unsigned char)etag[i]) * 16777619u;
	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)x;
	}
}

static int put(struct cp_diskcache *dc, const char *id, const char *etag,
	       uint64_t index, size_t len)
{
	unsigned char *buf = malloc(len ? len : 1);
	int err;

	assert_non_null(buf);
	pattern(buf, len, id, etag, index);
	err = cp_diskcache_put(dc, id, etag, index, buf, len);
	free(buf);
	return err;
}

/* 0 when the block is served with the right bytes, -ENOENT on a miss. */
static int get(struct cp_diskcache *dc, const char *id, const char *etag,
	       uint64_t index, size_t len)
{
	unsigned char *buf = malloc(len ? len : 1);
	unsigned char *want = malloc(len ? len : 1);
	int err;

	assert_non_null(buf);
	assert_non_null(want);
	pattern(want, len, id, etag, index);
	err = cp_diskcache_get(dc, id, etag, index, buf, len);
	if (!err)
		assert_memory_equal(buf, want, len);
	free(buf);
	free(want);
	return err;
}

/* Size of a block file of @len bytes with @etag. */
static uint64_t file_size(const char *etag, size_t len)
{
	return HDR + strlen(etag) + len;
}

/* The path of one block file, found by search (the hash is private). */
static const char *block_file(struct fixture *f, const char *id, uint64_t index)
{
	char cmd[4300];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "ls -d %s/%s/*/%llu 2>/dev/null | head -1",
		 f->dir, id, (unsigned long long)index);
	p = popen(cmd, "r");
	assert_non_null(p);
	f->path[0] = '\0';
	if (!fgets(f->path, sizeof(f->path), p))
		f->path[0] = '\0';
	pclose(p);
	f->path[strcspn(f->path, "\n")] = '\0';
	return f->path;
}

/* Files under the directory, the ledger (.cpfs-usage) aside. */
static int count_files(struct fixture *f)
{
	char cmd[4300];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "find %s -type f ! -name .cpfs-usage | wc -l", f->dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

static uint64_t walked_bytes;

static int add_bytes(const char *path, const struct stat *st, int flag,
		     struct FTW *ftw)
{
	if (flag == FTW_F && S_ISREG(st->st_mode) &&
	    strcmp(path + ftw->base, ".cpfs-usage"))
		walked_bytes += (uint64_t)st->st_size;
	return 0;
}

/* Apparent bytes of every file under the directory, the ledger aside:
 * what the cap is about. */
static uint64_t dir_bytes(const char *dir)
{
	walked_bytes = 0;
	nftw(dir, add_bytes, 16, FTW_PHYS);
	return walked_bytes;
}

/* The total the ledger holds (its layout is the on-disk contract). */
static uint64_t ledger_total(struct fixture *f)
{
	unsigned char rec[40];
	uint64_t v = 0;
	int fd, i;

	snprintf(f->path, sizeof(f->path), "%s/.cpfs-usage", f->dir);
	fd = open(f->path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, rec, sizeof(rec), 0), (ssize_t)sizeof(rec));
	close(fd);
	assert_memory_equal(rec, "CPFSUSE\n", 8);
	for (i = 7; i >= 0; i--)
		v = v << 8 | rec[16 + i];
	return v;
}

static void write_ledger(struct fixture *f, const void *bytes, size_t len)
{
	int fd;

	snprintf(f->path, sizeof(f->path), "%s/.cpfs-usage", f->dir);
	fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, bytes, len), (ssize_t)len);
	close(fd);
}

static void test_put_get(void **state)
{
	struct fixture *f = *state;
	struct cp_diskcache *dc =
		cp_diskcache_open(f->dir, 64 << 20, &f->stats);
	struct stat st;

	assert_non_null(dc);
	assert_int_equal(get(dc, ID1, ETAG_A, 0, 1 << 20), -ENOENT);
	assert_int_equal(f->stats.disk_misses, 1);
	assert_int_equal(put(dc, ID1, ETAG_A, 0, 1 << 20), 0);
	assert_int_equal(put(dc, ID1, ETAG_A, 1, 1 << 20), 0);
	assert_int_equal(put(dc, ID1, ETAG_A, 2, 12345), 0); /* the tail */
	assert_int_equal(put(dc, ID1, ETAG_A, 3, 0), 0);     /* empty */
	assert_int_equal(get(dc, ID1, ETAG_A, 0, 1 << 20), 0);
	assert_int_equal(get(dc, ID1, ETAG_A, 1, 1 << 20), 0);
	assert_int_equal(get(dc, ID1, ETAG_A, 2, 12345), 0);
	assert_int_equal(get(dc, ID1, ETAG_A, 3, 0), 0);
	assert_int_equal(f->stats.disk_hits, 4);
	assert_int_equal(f->stats.disk_misses, 1);

	assert_int_equal(stat(block_file(f, ID1, 0), &st), 0);
	assert_int_equal(st.st_size, file_size(ETAG_A, 1 << 20));
	assert_int_equal(count_files(f), 4); /* no temporary files left */

	/* a big index and an unquoted ETag */
	assert_int_equal(put(dc, ID2, "abc", UINT64_MAX, 100), 0);
	assert_int_equal(get(dc, ID2, "abc", UINT64_MAX, 100), 0);
	cp_diskcache_close(dc);
}

static void test_misses(void **state)
{
	struct fixture *f = *state;
	struct cp_diskcache *dc = cp_diskcache_open(f->dir, 1 << 20, NULL);

	assert_int_equal(put(dc, ID1, ETAG_A, 5, BS), 0);
	assert_int_equal(get(dc, ID1, ETAG_B, 5, BS), -ENOENT); /* etag */
	assert_int_equal(get(dc, ID1, "", 5, BS), -ENOENT);
	assert_int_equal(get(dc, ID1, ETAG_A, 5, BS - 1), -ENOENT); /* len */
	assert_int_equal(get(dc, ID1, ETAG_A, 5, BS + 1), -ENOENT);
	assert_int_equal(get(dc, ID1, ETAG_A, 4, BS), -ENOENT); /* index */
	assert_int_equal(get(dc, ID2, ETAG_A, 5, BS), -ENOENT); /* id */
	assert_int_equal(get(dc, "../x", ETAG_A, 5, BS), -ENOENT);
	/* none of that damaged the block */
	assert_int_equal(get(dc, ID1, ETAG_A, 5, BS), 0);
	assert_int_equal(put(dc, "../x", ETAG_A, 5, BS), -EINVAL);
	cp_diskcache_close(dc);
}

static void test_lru(void **state)
{
	struct fixture *f = *state;
	uint64_t one = file_size(ETAG_A, BS);
	struct cp_diskcache *dc = cp_diskcache_open(f->dir, 3 * one, NULL);
	struct stat st;
	int i;

	for (i = 0; i < 3; i++)
		assert_int_equal(put(dc, ID1, ETAG_A, i, BS), 0);
	assert_int_equal(count_files(f), 3);
	assert_int_equal(get(dc, ID1, ETAG_A, 0, BS), 0); /* 0 is now used */
	assert_int_equal(put(dc, ID1, ETAG_A, 3, BS), 0); /* evicts 1 */
	assert_int_equal(count_files(f), 3);
	assert_int_not_equal(stat(block_file(f, ID1, 1), &st), 0);
	assert_int_equal(get(dc, ID1, ETAG_A, 1, BS), -ENOENT);
	assert_int_equal(get(dc, ID1, ETAG_A, 0, BS), 0);
	assert_int_equal(get(dc, ID1, ETAG_A, 2, BS), 0);
	assert_int_equal(get(dc, ID1, ETAG_A, 3, BS), 0);

	/* order now 0 2 3; a put of another id evicts 0 */
	assert_int_equal(put(dc, ID2, ETAG_A, 0, BS), 0);
	assert_int_equal(get(dc, ID1, ETAG_A, 0, BS), -ENOENT);
	assert_int_equal(get(dc, ID2, ETAG_A, 0, BS), 0);

	/* rewriting a block does not count it twice */
	for (i = 0; i < 10; i++)
		assert_int_equal(put(dc, ID1, ETAG_A, 3, BS), 0);
	assert_int_equal(get(dc, ID1, ETAG_A, 2, BS), 0);
	assert_int_equal(get(dc, ID2, ETAG_A, 0, BS), 0);

	/* a block twice the cap is refused, nothing evicted for it */
	assert_int_equal(put(dc, ID1, ETAG_A, 9, 6 * BS), -EFBIG);
	assert_int_equal(count_files(f), 3);

	/* one big block pushes out as many as needed */
	assert_int_equal(put(dc, ID1, ETAG_A, 7, 2 * BS), 0);
	assert_int_equal(count_files(f), 2);
	assert_int_equal(get(dc, ID1, ETAG_A, 7, 2 * BS), 0);
	cp_diskcache_close(dc);

	/* evicting the last block of an id removes its directories */
	snprintf(f->path, sizeof(f->path), "%s/sub", f->dir);
	dc = cp_diskcache_open(f->path, one, NULL);
	assert_int_equal(put(dc, ID1, ETAG_A, 0, BS), 0);
	assert_int_equal(put(dc, ID2, ETAG_A, 0, BS), 0);
	cp_diskcache_close(dc);
	snprintf(f->path, sizeof(f->path), "%s/sub/%s", f->dir, ID1);
	assert_int_not_equal(stat(f->path, &st), 0);
	snprintf(f->path, sizeof(f->path), "%s/sub/%s", f->dir, ID2);
	assert_int_equal(stat(f->path, &st), 0);
}

static void test_drop(void **state)
{
	struct fixture *f = *state;
	struct cp_diskcache *dc = cp_diskcache_open(f->dir, 1 << 20, NULL);
	struct stat st;
	int i;

	for (i = 0; i < 3; i++) {
		assert_int_equal(put(dc, ID1, ETAG_A, i, BS), 0);
		assert_int_equal(put(dc, ID1, ETAG_B, i, BS), 0);
		assert_int_equal(put(dc, ID2, ETAG_A, i, BS), 0);
	}
	cp_diskcache_drop(dc, ID1, ETAG_B);
	for (i = 0; i < 3; i++) {
		assert_int_equal(get(dc, ID1, ETAG_A, i, BS), -ENOENT);
		assert_int_equal(get(dc, ID1, ETAG_B, i, BS), 0);
		assert_int_equal(get(dc, ID2, ETAG_A, i, BS), 0);
	}
	assert_int_equal(count_files(f), 6);

	cp_diskcache_drop(dc, ID1, NULL);
	for (i = 0; i < 3; i++) {
		assert_int_equal(get(dc, ID1, ETAG_B, i, BS), -ENOENT);
		assert_int_equal(get(dc, ID2, ETAG_A, i, BS), 0);
	}
	snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, ID1);
	assert_int_not_equal(stat(f->path, &st), 0);
	assert_int_equal(count_files(f), 3);

	/* dropped bytes no longer count against the cap */
	cp_diskcache_drop(dc, ID2, NULL);
	for (i = 0; i < 200; i++)
		assert_int_equal(put(dc, ID1, ETAG_A, i, BS), 0);
	assert_int_equal(count_files(f), 200);

	cp_diskcache_drop(dc, ID2, NULL); /* nothing there: fine */
	cp_diskcache_drop(dc, "../..", NULL);
	cp_diskcache_close(dc);
}

static void test_reopen(void **state)
{
	struct fixture *f = *state;
	uint64_t one = file_size(ETAG_A, BS);
	struct cp_diskcache *dc = cp_diskcache_open(f->dir, 10 * one, NULL);
	struct timespec ts[2];
	int i;

	for (i = 0; i < 4; i++)
		assert_int_equal(put(dc, ID1, ETAG_A, i, BS), 0);
	cp_diskcache_close(dc);

	dc = cp_diskcache_open(f->dir, 10 * one, NULL);
	for (i = 0; i < 4; i++)
		assert_int_equal(get(dc, ID1, ETAG_A, i, BS), 0);
	cp_diskcache_close(dc);

	/* last use (atime or mtime) orders the blocks found at open: make
	 * 2 the oldest, then 0, 3, 1 */
	for (i = 0; i < 4; i++) {
		static const int age[] = {300, 100, 400, 200};

		ts[0].tv_sec = ts[1].tv_sec = time(NULL) - age[i];
		ts[0].tv_nsec = ts[1].tv_nsec = 0;
		assert_int_equal(
			utimensat(AT_FDCWD, block_file(f, ID1, i), ts, 0), 0);
	}
	/* reopening with a smaller cap trims the oldest */
	dc = cp_diskcache_open(f->dir, 2 * one, NULL);
	assert_int_equal(count_files(f), 2);
	assert_int_equal(get(dc, ID1, ETAG_A, 2, BS), -ENOENT);
	assert_int_equal(get(dc, ID1, ETAG_A, 0, BS), -ENOENT);
	/* and the reopened index keeps evicting in order: 3 goes next */
	assert_int_equal(put(dc, ID2, ETAG_A, 0, BS), 0);
	assert_int_equal(get(dc, ID1, ETAG_A, 3, BS), -ENOENT);
	assert_int_equal(get(dc, ID1, ETAG_A, 1, BS), 0);
	assert_int_equal(get(dc, ID2, ETAG_A, 0, BS), 0);
	cp_diskcache_close(dc);
}

static void test_get_marks_use(void **state)
{
	struct fixture *f = *state;
	struct cp_diskcache *dc = cp_diskcache_open(f->dir, 1 << 20, NULL);
	struct timespec ts[2] = {{1000, 0}, {1000, 0}};
	struct stat st;

	assert_int_equal(put(dc, ID1, ETAG_A, 0, BS), 0);
	assert_int_equal(utimensat(AT_FDCWD, block_file(f, ID1, 0), ts, 0), 0);
	assert_int_equal(get(dc, ID1, ETAG_A, 0, BS), 0);
	assert_int_equal(stat(block_file(f, ID1, 0), &st), 0);
	assert_true(st.st_atime > 1000);
	assert_int_equal(st.st_mtime, 1000);
	cp_diskcache_close(dc);
}

static void corrupt(const char *path, off_t off, int truncate_it)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	assert_true(fd >= 0);
	if (truncate_it) {
		assert_int_equal(ftruncate(fd, off), 0);
	} else {
		assert_int_equal(pread(fd, &c, 1, off), 1);
		c ^= 0x10;
		assert_int_equal(pwrite(fd, &c, 1, off), 1);
	}
	close(fd);
}

static void test_corrupt(void **state)
{
	struct fixture *f = *state;
	struct cp_diskcache *dc = cp_diskcache_open(f->dir, 1 << 20, NULL);
	/* offsets in the header, the ETag and the data */
	static const off_t flips[] = {
		0, 9, 13, 17, 25, 33, HDR + 1, HDR + 40, HDR + 100, HDR + 1000};
	struct stat st;
	size_t i;

	for (i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
		assert_int_equal(put(dc, ID1, ETAG_A, i, BS), 0);
		corrupt(block_file(f, ID1, i), flips[i], 0);
		assert_int_equal(get(dc, ID1, ETAG_A, i, BS), -ENOENT);
	}
	assert_int_equal(count_files(f), 0); /* damaged blocks deleted */

	/* truncated: in the header, the ETag, the data; and a grown file */
	assert_int_equal(put(dc, ID1, ETAG_A, 0, BS), 0);
	corrupt(block_file(f, ID1, 0), 10, 1);
	assert_int_equal(get(dc, ID1, ETAG_A, 0, BS), -ENOENT);
	assert_int_equal(put(dc, ID1, ETAG_A, 0, BS), 0);
	corrupt(block_file(f, ID1, 0), HDR + 3, 1);
	assert_int_equal(get(dc, ID1, ETAG_A, 0, BS), -ENOENT);
	assert_int_equal(put(dc, ID1, ETAG_A, 0, BS), 0);
	corrupt(block_file(f, ID1, 0), file_size(ETAG_A, BS) - 1, 1);
	assert_int_equal(get(dc, ID1, ETAG_A, 0, BS), -ENOENT);
	assert_int_equal(put(dc, ID1, ETAG_A, 0, BS), 0);
	corrupt(block_file(f, ID1, 0), file_size(ETAG_A, BS) + 1, 1);
	assert_int_equal(get(dc, ID1, ETAG_A, 0, BS), -ENOENT);
	assert_int_equal(count_files(f), 0);

	/* a block renamed to another index is damage too */
	assert_int_equal(put(dc, ID1, ETAG_A, 0, BS), 0);
	snprintf(f->path + 2100, 2100, "%s", block_file(f, ID1, 0));
	strcpy(strrchr(f->path + 2100, '/'), "/1");
	assert_int_equal(rename(block_file(f, ID1, 0), f->path + 2100), 0);
	assert_int_equal(get(dc, ID1, ETAG_A, 1, BS), -ENOENT);
	assert_int_not_equal(stat(block_file(f, ID1, 1), &st), 0);

	/* and after all that, the cache works */
	assert_int_equal(put(dc, ID1, ETAG_A, 0, BS), 0);
	assert_int_equal(get(dc, ID1, ETAG_A, 0, BS), 0);
	cp_diskcache_close(dc);
}

static void test_reopen_ignores_junk(void **state)
{
	struct fixture *f = *state;
	uint64_t one = file_size(ETAG_A, BS);
	struct cp_diskcache *dc = cp_diskcache_open(f->dir, 2 * one, NULL);
	char cmd[4300];

	assert_int_equal(put(dc, ID1, ETAG_A, 0, BS), 0);
	cp_diskcache_close(dc);
	/* stray files the scan must neither count nor delete */
	snprintf(cmd, sizeof(cmd),
		 "cd %s && echo x > README && mkdir -p junk/dir && "
		 "echo x > junk/dir/1 && echo x > %s/notes && "
		 "mkdir %s/0000000000000000 && "
		 "head -c 100000 /dev/zero > %s/0000000000000000/junk",
		 f->dir, ID1, ID1, ID1);
	assert_int_equal(system(cmd), 0);
	dc = cp_diskcache_open(f->dir, 2 * one, NULL);
	assert_int_equal(get(dc, ID1, ETAG_A, 0, BS), 0);
	assert_int_equal(put(dc, ID1, ETAG_A, 1, BS), 0);
	assert_int_equal(get(dc, ID1, ETAG_A, 0, BS), 0);
	assert_int_equal(get(dc, ID1, ETAG_A, 1, BS), 0);
	assert_int_equal(count_files(f), 6);
	cp_diskcache_close(dc);
}

static void check_disabled(const char *dir)
{
	struct cp_stats stats;
	struct cp_diskcache *dc;

	memset(&stats, 0, sizeof(stats));
	dc = cp_diskcache_open(dir, 1 << 20, &stats);
	assert_non_null(dc);
	assert_int_equal(put(dc, ID1, ETAG_A, 0, BS), 0);
	assert_int_equal(get(dc, ID1, ETAG_A, 0, BS), -ENOENT);
	assert_int_equal(stats.disk_misses, 1);
	cp_diskcache_drop(dc, ID1, NULL);
	cp_diskcache_close(dc);
}

static void test_disabled(void **state)
{
	struct fixture *f = *state;
	int fd;

	check_disabled("/etc/passwd/x");
	check_disabled("");
	snprintf(f->path, sizeof(f->path), "%s/file", f->dir);
	fd = open(f->path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
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
	struct cp_diskcache *dc;
	int i, err = 0;

	if (mount("tmpfs", f->dir, "tmpfs", 0, "size=64k")) {
		skip();
		return;
	}
	dc = cp_diskcache_open(f->dir, 1 << 30, NULL);
	for (i = 0; i < 100 && !err; i++)
		err = put(dc, ID1, ETAG_A, i, BS);
	assert_int_equal(err, -ENOSPC);
	assert_int_equal(put(dc, ID1, ETAG_A, 0, BS), 0); /* now a no-op */
	assert_int_equal(get(dc, ID1, ETAG_A, 0, BS), 0); /* still served */
	assert_int_equal(get(dc, ID1, ETAG_A, i - 1, BS), -ENOENT);
	cp_diskcache_close(dc);
	umount(f->dir);
}

static void test_shared_dir(void **state)
{
	struct fixture *f = *state;
	struct cp_diskcache *a = cp_diskcache_open(f->dir, 1 << 20, NULL);
	struct cp_diskcache *b = cp_diskcache_open(f->dir, 1 << 20, NULL);

	assert_int_equal(put(a, ID1, ETAG_A, 0, BS), 0);
	assert_int_equal(get(b, ID1, ETAG_A, 0, BS), 0);
	assert_int_equal(put(b, ID1, ETAG_B, 0, BS), 0);
	assert_int_equal(get(a, ID1, ETAG_B, 0, BS), 0);
	/* one drops what the other stored */
	cp_diskcache_drop(a, ID1, ETAG_A);
	assert_int_equal(get(b, ID1, ETAG_B, 0, BS), -ENOENT);
	assert_int_equal(get(b, ID1, ETAG_A, 0, BS), 0);
	cp_diskcache_drop(b, ID1, NULL);
	assert_int_equal(get(a, ID1, ETAG_A, 0, BS), -ENOENT);
	cp_diskcache_close(a);
	cp_diskcache_close(b);
}

struct racer {
	struct cp_diskcache *dc;
	unsigned int seed;
	int bad;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	static const char *const etags[] = {ETAG_A, ETAG_B};
	unsigned char *buf = malloc(BS), *want = malloc(BS);
	int i;

	for (i = 0; i < 2000 && buf && want; i++) {
		const char *id = rand_r(&r->seed) % 2 ? ID1 : ID2;
		const char *etag = etags[rand_r(&r->seed) % 2];
		uint64_t index = (uint64_t)(rand_r(&r->seed) % 16);
		size_t len = BS - index; /* lengths differ per index */

		pattern(want, len, id, etag, index);
		switch (rand_r(&r->seed) % 8) {
		case 0:
			cp_diskcache_drop(r->dc, id, etag);
			break;
		case 1:
		case 2:
		case 3:
			/* may fail if a drop races it: only bytes matter */
			cp_diskcache_put(r->dc, id, etag, index, want, len);
			break;
		default:
			if (!cp_diskcache_get(r->dc, id, etag, index, buf,
					      len) &&
			    memcmp(buf, want, len))
				r->bad++;
		}
	}
	free(buf);
	free(want);
	return NULL;
}

static void test_concurrent(void **state)
{
	struct fixture *f = *state;
	/* a cap of ~20 blocks for 64 keys keeps eviction busy */
	struct cp_diskcache *a = cp_diskcache_open(f->dir, 20 * BS, &f->stats);
	struct cp_diskcache *b = cp_diskcache_open(f->dir, 20 * BS, &f->stats);
	struct racer r[6];
	pthread_t t[6];
	int i;

	for (i = 0; i < 6; i++) {
		r[i] = (struct racer){.dc = i % 3 ? a : b, .seed = i + 1};
		assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
	}
	for (i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(r[i].bad, 0);
	}
	assert_true(f->stats.disk_hits > 0);
	cp_diskcache_close(a);
	cp_diskcache_close(b);
	/* one cap for both, and the ledger agrees with the disk */
	assert_true(dir_bytes(f->dir) <= 20 * BS);
	assert_int_equal(ledger_total(f), dir_bytes(f->dir));
}

/* Two mounts, one cap: the second evicts what the first stored. */
static void test_shared_cap(void **state)
{
	struct fixture *f = *state;
	uint64_t one = file_size(ETAG_A, BS);
	struct cp_diskcache *a = cp_diskcache_open(f->dir, 4 * one, NULL);
	struct cp_diskcache *b = cp_diskcache_open(f->dir, 4 * one, NULL);
	int i, k;

	for (i = 0; i < 4; i++)
		assert_int_equal(put(a, ID1, ETAG_A, i, BS), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(put(b, ID2, ETAG_A, i, BS), 0);
	assert_int_equal(count_files(f), 4);
	assert_int_equal(ledger_total(f), 4 * one);
	/* b knew none of a's blocks: it learnt them and took the oldest */
	for (i = 0; i < 3; i++)
		assert_int_equal(get(a, ID2, ETAG_A, i, BS), 0);
	for (i = 0, k = -1; i < 4; i++)
		if (get(a, ID1, ETAG_A, i, BS) == 0)
			k = i;
	assert_true(k >= 0);

	/* a's index now runs ID2/0, ID2/1, ID2/2, ID1/k; b uses ID2/0
	 * after a did (its atime says so), so a spares it, evicts ID2/1 */
	usleep(20 * 1000);
	assert_int_equal(get(b, ID2, ETAG_A, 0, BS), 0);
	assert_int_equal(put(a, ID1, ETAG_A, 5, BS), 0);
	assert_int_equal(get(b, ID2, ETAG_A, 0, BS), 0);
	assert_int_equal(get(b, ID2, ETAG_A, 1, BS), -ENOENT);
	assert_int_equal(get(b, ID2, ETAG_A, 2, BS), 0);
	assert_int_equal(get(b, ID1, ETAG_A, k, BS), 0);

	/* when b has used every block a knows of since, a recounts and
	 * evicts by the disk's order: ID1/k, used longest ago */
	usleep(20 * 1000);
	assert_int_equal(get(b, ID1, ETAG_A, k, BS), 0);
	usleep(20 * 1000);
	for (i = 0; i < 3; i++)
		get(b, ID2, ETAG_A, i, BS);
	assert_int_equal(get(b, ID1, ETAG_A, 5, BS), 0);
	assert_int_equal(put(a, ID1, ETAG_A, 6, BS), 0);
	assert_int_equal(get(b, ID1, ETAG_A, k, BS), -ENOENT);
	assert_int_equal(get(b, ID1, ETAG_A, 5, BS), 0);
	assert_int_equal(get(b, ID2, ETAG_A, 0, BS), 0);
	assert_int_equal(get(b, ID2, ETAG_A, 2, BS), 0);
	assert_true(dir_bytes(f->dir) <= 4 * one);
	assert_int_equal(ledger_total(f), dir_bytes(f->dir));
	cp_diskcache_close(a);
	cp_diskcache_close(b);
}

/* Mounts in separate processes, writing at once, and a sampler that
 * takes the ledger lock: the files never add up to more than the cap. */
static void test_shared_cap_processes(void **state)
{
	struct fixture *f = *state;
	uint64_t cap = 16 * file_size(ETAG_A, BS), max = 0;
	pid_t kids[3];
	int i, status, running;

	for (i = 0; i < 3; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			struct cp_diskcache *dc =
				cp_diskcache_open(f->dir, cap, NULL);
			const char *id = i == 0 ? ID1 : i == 1 ? ID2 : ID3;
			unsigned char buf[BS], want[BS];
			int k, bad = 0;

			for (k = 0; k < 600; k++) {
				pattern(buf, BS, id, ETAG_A, k % 40);
				cp_diskcache_put(dc, id, ETAG_A, k % 40, buf, BS);
				/* A hit must be the right bytes (the block may be
				 * evicted by another process right after: check
				 * this read's bytes, not a second read's). */
				if (!cp_diskcache_get(dc, id, ETAG_A, k % 37,
						      buf, BS)) {
					pattern(want, BS, id, ETAG_A, k % 37);
					bad += memcmp(buf, want, BS) != 0;
				}
			}
			cp_diskcache_close(dc);
			_exit(bad ? 1 : 0);
		}
	}
	do {
		int fd;
		uint64_t now;

		snprintf(f->path, sizeof(f->path), "%s/.cpfs-usage", f->dir);
		fd = open(f->path, O_RDWR | O_CREAT, 0600);
		assert_true(fd >= 0);
		assert_int_equal(flock(fd, LOCK_EX), 0);
		now = dir_bytes(f->dir);
		close(fd);
		max = now > max ? now : max;
		running = 0;
		for (i = 0; i < 3; i++)
			if (kids[i] && waitpid(kids[i], &status, WNOHANG) == 0)
				running++;
			else if (kids[i]) {
				assert_true(WIFEXITED(status));
				assert_int_equal(WEXITSTATUS(status), 0);
				kids[i] = 0;
			}
	} while (running);
	assert_true(max > 0);
	assert_true(max <= cap);
	assert_true(dir_bytes(f->dir) <= cap);
	assert_int_equal(ledger_total(f), dir_bytes(f->dir));
}

/* A ledger that is damaged, truncated, foreign, wrong or not a file is
 * recounted from the disk; the cap holds throughout. */
static void test_ledger_heals(void **state)
{
	struct fixture *f = *state;
	uint64_t one = file_size(ETAG_A, BS);
	struct cp_diskcache *dc = cp_diskcache_open(f->dir, 3 * one, NULL);
	unsigned char rec[40];
	int i;

	for (i = 0; i < 2; i++)
		assert_int_equal(put(dc, ID1, ETAG_A, i, BS), 0);
	assert_int_equal(ledger_total(f), 2 * one);

	/* garbage, then a truncated record: recounted on the next put */
	write_ledger(f, "garbage garbage garbage garbage garbage!", 40);
	assert_int_equal(put(dc, ID1, ETAG_A, 2, BS), 0);
	assert_int_equal(ledger_total(f), 3 * one);
	write_ledger(f, "CPFSUSE\n", 8);
	assert_int_equal(put(dc, ID1, ETAG_A, 3, BS), 0);
	assert_int_equal(ledger_total(f), 3 * one);
	assert_int_equal(count_files(f), 3);

	/* a flipped bit in the total fails the checksum */
	snprintf(f->path, sizeof(f->path), "%s/.cpfs-usage", f->dir);
	corrupt(f->path, 16, 0);
	assert_int_equal(put(dc, ID1, ETAG_A, 4, BS), 0);
	assert_int_equal(ledger_total(f), 3 * one);

	/* a sound record that says too much (a mount died holding a
	 * reservation): the next mount's start recounts it */
	snprintf(f->path, sizeof(f->path), "%s/.cpfs-usage", f->dir);
	i = open(f->path, O_RDONLY);
	assert_int_equal(pread(i, rec, 40, 0), 40);
	close(i);
	cp_diskcache_close(dc);
	dc = cp_diskcache_open(f->dir, 3 * one, NULL);
	assert_int_equal(ledger_total(f), 3 * one);

	/* ... and so does a mount that must evict but knows of nothing */
	assert_int_equal(system("true"), 0);
	snprintf(f->path, sizeof(f->path), "rm -rf %s/%s", f->dir, ID1);
	assert_int_equal(system(f->path), 0); /* ledger says 3, disk 0 */
	assert_int_equal(put(dc, ID2, ETAG_A, 0, BS), 0);
	assert_int_equal(ledger_total(f), one);

	/* a directory where the ledger belongs */
	snprintf(f->path, sizeof(f->path), "rm -f %s/.cpfs-usage && "
		 "mkdir -p %s/.cpfs-usage/x", f->dir, f->dir);
	assert_int_equal(system(f->path), 0);
	assert_int_equal(put(dc, ID2, ETAG_A, 1, BS), 0);
	assert_int_equal(ledger_total(f), 2 * one);
	cp_diskcache_close(dc);
}

/* A mount that dies holding the lock, or in the middle of a write, leaves
 * nothing the others wait on or count. */
static void test_crashed_mount(void **state)
{
	struct fixture *f = *state;
	uint64_t one = file_size(ETAG_A, BS);
	struct cp_diskcache *dc = cp_diskcache_open(f->dir, 4 * one, NULL);
	char cmd[9000];
	pid_t pid;
	int status, fd, live;

	assert_int_equal(put(dc, ID1, ETAG_A, 0, BS), 0);

	/* killed while holding the ledger lock: the kernel releases it */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		snprintf(f->path, sizeof(f->path), "%s/.cpfs-usage", f->dir);
		fd = open(f->path, O_RDWR);
		flock(fd, LOCK_EX);
		pause();
		_exit(0);
	}
	usleep(100 * 1000);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(put(dc, ID1, ETAG_A, 1, BS), 0);

	/* temporary files: one whose writer died (nobody holds it) and one
	 * still being written (held) */
	snprintf(cmd, sizeof(cmd),
		 "d=$(dirname $(ls -d %s/%s/*/0)) && "
		 "head -c %llu /dev/zero > $d/.tmp-7.dead01 && "
		 "head -c %llu /dev/zero > $d/.tmp-8.live01",
		 f->dir, ID1, (unsigned long long)one,
		 (unsigned long long)one);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s", block_file(f, ID1, 0));
	strcpy(strrchr(cmd, '/'), "/.tmp-8.live01");
	live = open(cmd, O_RDONLY);
	assert_true(live >= 0);
	assert_int_equal(flock(live, LOCK_SH), 0);
	cp_diskcache_close(dc);

	/* the next start recounts: the dead file goes, the live one counts */
	dc = cp_diskcache_open(f->dir, 4 * one, NULL);
	assert_int_equal(count_files(f), 3);
	assert_int_equal(ledger_total(f), 3 * one);
	assert_int_equal(get(dc, ID1, ETAG_A, 0, BS), 0);
	assert_int_equal(get(dc, ID1, ETAG_A, 1, BS), 0);
	close(live);
	cp_diskcache_close(dc);
}

/* Things that are not blocks where blocks belong are removed, and the next
 * put stores the block again. */
static void test_foreign_in_place(void **state)
{
	struct fixture *f = *state;
	struct cp_diskcache *dc = cp_diskcache_open(f->dir, 1 << 20, NULL);
	char cmd[9000], block[4200];

	/* a directory, then a symbolic link, where block 0 belongs */
	assert_int_equal(put(dc, ID1, ETAG_A, 0, BS), 0);
	snprintf(block, sizeof(block), "%s", block_file(f, ID1, 0));
	snprintf(cmd, sizeof(cmd), "rm %s && mkdir -p %s/sub", block, block);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(get(dc, ID1, ETAG_A, 0, BS), -ENOENT);
	assert_int_equal(put(dc, ID1, ETAG_A, 0, BS), 0);
	assert_int_equal(get(dc, ID1, ETAG_A, 0, BS), 0);
	snprintf(cmd, sizeof(cmd), "rm %s && ln -s /etc/passwd %s", block,
		 block);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(get(dc, ID1, ETAG_A, 0, BS), -ENOENT);
	assert_int_equal(put(dc, ID1, ETAG_A, 0, BS), 0);
	assert_int_equal(get(dc, ID1, ETAG_A, 0, BS), 0);

	/* a block of another length at the right name is rewritten */
	corrupt(block, 100, 1);
	assert_int_equal(put(dc, ID1, ETAG_A, 0, BS), 0);
	assert_int_equal(get(dc, ID1, ETAG_A, 0, BS), 0);

	/* a file where the id's directory belongs */
	snprintf(cmd, sizeof(cmd), "rm -rf %s/%s && echo x > %s/%s", f->dir,
		 ID2, f->dir, ID2);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(get(dc, ID2, ETAG_A, 0, BS), -ENOENT);
	assert_int_equal(put(dc, ID2, ETAG_A, 0, BS), 0);
	assert_int_equal(get(dc, ID2, ETAG_A, 0, BS), 0);
	/* what was removed behind its back is counted until a recount */
	assert_true(ledger_total(f) >= dir_bytes(f->dir));
	cp_diskcache_close(dc);
	dc = cp_diskcache_open(f->dir, 1 << 20, NULL);
	assert_int_equal(ledger_total(f), dir_bytes(f->dir));
	cp_diskcache_close(dc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_misses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lru, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_marks_use, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_ignores_junk, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_disabled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only_mount, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_full_disk, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_shared_dir, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_shared_cap, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_shared_cap_processes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_ledger_heals, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_crashed_mount, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_foreign_in_place, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
