/*
 * test_durable.c - the persisted-file helpers: FNV-1a vectors, the id
 * check, whole reads and writes, LE fields, temp-file-and-rename (and how
 * it clears what stands in its way), the cross-process lock, warn-once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "durable.h"
#include "tmpdir.h"

struct fixture {
	char dir[64];
	char path[1024];
	char tmp[4200];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || tmpdir_make(f->dir, sizeof(f->dir), "durable") < 0)
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

static void test_fnv1a(void **state)
{
	(void)state;
	/* the published FNV-1a 64 test vectors */
	assert_true(cp_fnv1a64("", 0) == 0xcbf29ce484222325ULL);
	assert_true(cp_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cULL);
	assert_true(cp_fnv1a64("foobar", 6) == 0x85944171f73967e8ULL);
	/* in pieces, the same */
	assert_true(cp_fnv1a64_update(cp_fnv1a64("foo", 3), "bar", 3) ==
		    cp_fnv1a64("foobar", 6));
}

static void test_id_ok(void **state)
{
	(void)state;
	assert_true(cp_durable_id_ok("5f0c1e2d3b4a59687766aa01"));
	assert_true(cp_durable_id_ok("a"));
	assert_true(cp_durable_id_ok("ABCxyz09"));
	assert_false(cp_durable_id_ok(NULL));
	assert_false(cp_durable_id_ok(""));
	assert_false(cp_durable_id_ok("5f0c1e2d3b4a59687766aa011")); /* 25 */
	assert_false(cp_durable_id_ok(".."));
	assert_false(cp_durable_id_ok("a/b"));
	assert_false(cp_durable_id_ok(".cpfs-usage"));
	assert_false(cp_durable_id_ok("ab cd"));
	assert_false(cp_durable_id_ok("\xc3\xa9"));
}

static void test_le(void **state)
{
	unsigned char b[8];

	(void)state;
	cp_durable_put_le(b, 0x0102030405060708ULL, 8);
	assert_int_equal(b[0], 0x08);
	assert_int_equal(b[7], 0x01);
	assert_true(cp_durable_get_le(b, 8) == 0x0102030405060708ULL);
	cp_durable_put_le(b, 0xdeadbeef, 4);
	assert_true(cp_durable_get_le(b, 4) == 0xdeadbeef);
	assert_true(cp_durable_get_le(b, 2) == 0xbeef);
}

static void test_read_write_all(void **state)
{
	struct fixture *f = *state;
	char big[100000], back[100000];
	int fd;

	memset(big, 'x', sizeof(big));
	snprintf(f->path, sizeof(f->path), "%s/file", f->dir);
	fd = open(f->path, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(cp_durable_write_all(fd, big, sizeof(big)), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(cp_durable_read_all(fd, back, sizeof(back)), 0);
	assert_memory_equal(big, back, sizeof(big));
	/* the file ends first: -EIO, not a short success */
	assert_int_equal(lseek(fd, 10, SEEK_SET), 10);
	assert_int_equal(cp_durable_read_all(fd, back, sizeof(back)), -EIO);
	close(fd);
	assert_int_equal(cp_durable_write_all(-1, big, 1), -EBADF);
}

static void read_text(const char *path, char *out, size_t len)
{
	FILE *fp = fopen(path, "r");
	size_t n;

	assert_non_null(fp);
	n = fread(out, 1, len - 1, fp);
	out[n] = '\0';
	fclose(fp);
}

static int count_entries(const char *dir)
{
	char cmd[4300];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A %s | wc -l", dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

static void test_replace(void **state)
{
	struct fixture *f = *state;
	char sub[512], text[64];

	snprintf(sub, sizeof(sub), "%s/a/b", f->dir);
	snprintf(f->path, sizeof(f->path), "%s/rec", sub);
	/* the directory is made on demand */
	assert_int_equal(cp_durable_replace(sub, 2, "rec", f->path, "one", 3), 0);
	read_text(f->path, text, sizeof(text));
	assert_string_equal(text, "one");
	assert_int_equal(cp_durable_replace(sub, 2, "rec", f->path, "two!", 4),
			 0);
	read_text(f->path, text, sizeof(text));
	assert_string_equal(text, "two!");
	assert_int_equal(count_entries(sub), 1); /* no temp file left */

	/* a directory tree standing where the file goes is cleared */
	assert_int_equal(unlink(f->path), 0);
	snprintf(f->tmp, sizeof(f->tmp), "mkdir -p %s/x/y && touch %s/x/z",
		 f->path, f->path);
	assert_int_equal(system(f->tmp), 0);
	assert_int_equal(cp_durable_replace(sub, 2, "rec", f->path, "3", 1), 0);
	read_text(f->path, text, sizeof(text));
	assert_string_equal(text, "3");

	/* a file standing where the directory goes is cleared */
	snprintf(f->tmp, sizeof(f->tmp), "rm -rf %s && echo x > %s", sub, sub);
	assert_int_equal(system(f->tmp), 0);
	assert_int_equal(cp_durable_replace(sub, 2, "rec", f->path, "4", 1), 0);
	read_text(f->path, text, sizeof(text));
	assert_string_equal(text, "4");

	/* ... and so is one where its parent goes, when the store owns
	 * that level too; never one above, never a link */
	snprintf(f->tmp, sizeof(f->tmp), "rm -rf %s/a && echo x > %s/a",
		 f->dir, f->dir);
	assert_int_equal(system(f->tmp), 0);
	assert_int_equal(cp_durable_replace(sub, 1, "rec", f->path, "5", 1),
			 -ENOTDIR);
	snprintf(f->tmp, sizeof(f->tmp), "%s/a", f->dir);
	read_text(f->tmp, text, sizeof(text));
	assert_string_equal(text, "x\n");
	snprintf(f->tmp, sizeof(f->tmp), "rm -rf %s/a && echo x > %s/a",
		 f->dir, f->dir);
	assert_int_equal(system(f->tmp), 0);
	assert_int_equal(cp_durable_replace(sub, 2, "rec", f->path, "5", 1), 0);
	snprintf(f->tmp, sizeof(f->tmp),
		 "rm -rf %s/a && echo keep > %s/target && ln -s target %s/a",
		 f->dir, f->dir, f->dir);
	assert_int_equal(system(f->tmp), 0);
	assert_true(cp_durable_replace(sub, 2, "rec", f->path, "6", 1) < 0);
	snprintf(f->tmp, sizeof(f->tmp), "%s/target", f->dir);
	read_text(f->tmp, text, sizeof(text));
	assert_string_equal(text, "keep\n");
}

static void test_commit_failure_cleans_up(void **state)
{
	struct fixture *f = *state;
	char tmp[4200];
	int fd;

	fd = cp_durable_temp(f->dir, 1, "t", tmp, sizeof(tmp));
	assert_true(fd >= 0);
	assert_non_null(strstr(tmp, "/.t."));
	/* renaming over a non-empty directory we cannot clear: fails, and
	 * the temp file is gone */
	snprintf(f->path, sizeof(f->path), "%s/nope/deeper/x", f->dir);
	assert_true(cp_durable_commit(fd, tmp, f->path) < 0);
	assert_int_equal(access(tmp, F_OK), -1);
	assert_int_equal(count_entries(f->dir), 0);
	/* a name too long for the buffer */
	assert_int_equal(cp_durable_temp(f->dir, 1, "t", tmp, 8), -ENAMETOOLONG);
}

static void test_remove(void **state)
{
	struct fixture *f = *state;

	snprintf(f->tmp, sizeof(f->tmp),
		 "mkdir -p %s/t/a/b && touch %s/t/a/b/c %s/t/d && "
		 "ln -s /etc %s/t/link",
		 f->dir, f->dir, f->dir, f->dir);
	assert_int_equal(system(f->tmp), 0);
	snprintf(f->path, sizeof(f->path), "%s/t", f->dir);
	assert_int_equal(cp_durable_remove(f->path), 0);
	assert_int_equal(access(f->path, F_OK), -1);
	assert_int_equal(access("/etc/passwd", F_OK), 0); /* not followed */
	assert_int_equal(cp_durable_remove(f->path), 0); /* absent: done */
}

static void test_lock(void **state)
{
	struct fixture *f = *state;
	int a, b, status;
	pid_t pid;

	snprintf(f->path, sizeof(f->path), "%s/lock", f->dir);
	a = cp_durable_lock(f->path);
	assert_true(a >= 0);
	/* a second open of the file, even in this process, is excluded */
	b = open(f->path, O_RDWR);
	assert_true(b >= 0);
	assert_int_equal(flock(b, LOCK_EX | LOCK_NB), -1);
	cp_durable_unlock(a);
	assert_int_equal(flock(b, LOCK_EX | LOCK_NB), 0);
	close(b);

	/* a holder that dies releases it */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cp_durable_lock(f->path);
		pause();
		_exit(0);
	}
	usleep(100 * 1000);
	b = open(f->path, O_RDWR);
	assert_int_equal(flock(b, LOCK_EX | LOCK_NB), -1);
	close(b);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	a = cp_durable_lock(f->path);
	assert_true(a >= 0);
	cp_durable_unlock(a);

	snprintf(f->path, sizeof(f->path), "%s/missing/lock", f->dir);
	assert_int_equal(cp_durable_lock(f->path), -ENOENT);
}

static void test_health(void **state)
{
	struct cp_durable_health h;

	(void)state;
	cp_durable_health_init(&h);
	assert_true(cp_durable_can_read(&h) && cp_durable_can_write(&h));
	cp_durable_failed(&h, "store", "/x", "cannot write", EIO);
	assert_true(cp_durable_can_write(&h)); /* transient: carry on */
	assert_true(atomic_load(&h.warned));
	cp_durable_failed(&h, "store", "/x", "cannot write", ENOSPC);
	assert_false(cp_durable_can_write(&h));
	assert_true(cp_durable_can_read(&h));
	cp_durable_disable(&h, "store", "/x", "gone", ENOENT);
	assert_false(cp_durable_can_read(&h));
	assert_true(cp_durable_err_permanent(EROFS));
	assert_false(cp_durable_err_permanent(EINTR));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fnv1a),
		cmocka_unit_test(test_id_ok),
		cmocka_unit_test(test_le),
		cmocka_unit_test_setup_teardown(test_read_write_all, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_failure_cleans_up,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
		cmocka_unit_test(test_health),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
