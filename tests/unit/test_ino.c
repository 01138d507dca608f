/*
 * test_ino.c - inode numbers from ids: the same for an id whatever the
 * order in which ids are met, in every table; kinds apart; collisions
 * resolved without reuse (forced with a tiny hash mask); the by-page
 * index numbers its directories and links the same way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "files.h"
#include "ino.h"
#include "pages.h"
#include "stats.h"

static struct cp_config cfg;
static struct cp_stats stats;

static void id_of(int i, char out[25])
{
	snprintf(out, 25, "%024x", 0x5f00 + i * 7919);
}

static void test_pure(void **state)
{
	const char *a = "65f1c0de2a9b4c0012345678";
	uint64_t x = cp_ino_make(CP_INO_FILE, a, NULL, 0, CP_INO_MASK);

	(void)state;
	/* case does not matter; kinds are apart; attempts differ */
	assert_true(x == cp_ino_make(CP_INO_FILE, "65F1C0DE2A9B4C0012345678",
				     NULL, 0, CP_INO_MASK));
	assert_int_equal(cp_ino_kind(x), CP_INO_FILE);
	assert_true(x != cp_ino_make(CP_INO_FILE, a, NULL, 1, CP_INO_MASK));
	assert_int_equal(cp_ino_kind(cp_ino_rekind(x, CP_INO_NAME_LINK)),
			 CP_INO_NAME_LINK);
	assert_true(cp_ino_make(CP_INO_PAGE_LINK, a, "b", 0, CP_INO_MASK) !=
		    cp_ino_make(CP_INO_PAGE_LINK, "b", a, 0, CP_INO_MASK));
	/* a pinned value: the numbers must not change between releases
	 * (backup tools would read every file again) */
	assert_true(x == 0x2cb48fe30c47442bULL ||
		    (printf("ino now %#llx\n", (unsigned long long)x), 0));
}

/* Adds ids 0..n-1 in the given order; returns the table. */
static struct cp_files *table(const int *order, int n, uint64_t mask)
{
	struct cp_files *f = cp_files_new(&cfg, NULL, NULL, &stats);
	int i;

	assert_non_null(f);
	if (mask)
		cp_files_set_ino_mask(f, mask);
	for (i = 0; i < n; i++) {
		char id[25];

		id_of(order[i], id);
		assert_non_null(cp_files_get(f, id));
	}
	return f;
}

static void test_order_does_not_matter(void **state)
{
	int fwd[200], rev[200], i;
	struct cp_files *a, *b;

	(void)state;
	for (i = 0; i < 200; i++) {
		fwd[i] = i;
		rev[i] = 199 - i;
	}
	a = table(fwd, 200, 0);
	b = table(rev, 100, 0); /* half of them, the other way round */
	for (i = 100; i < 200; i++) {
		char id[25];

		id_of(i, id);
		assert_true(cp_files_get(a, id)->ino ==
			    cp_files_get(b, id)->ino);
		assert_true(cp_files_by_ino(a, cp_files_get(a, id)->ino) ==
			    cp_files_get(a, id));
		assert_int_equal(cp_ino_kind(cp_files_get(a, id)->ino),
				 CP_INO_FILE);
	}
	cp_files_free(a);
	cp_files_free(b);
}

static void test_forced_collisions(void **state)
{
	int order[64], i, j;
	struct cp_files *f;
	uint64_t seen[64];

	(void)state;
	for (i = 0; i < 64; i++)
		order[i] = i;
	/* 64 ids into 127 numbers: collisions for sure */
	f = table(order, 64, 127);
	for (i = 0; i < 64; i++) {
		char id[25];
		struct cp_file *x;

		id_of(i, id);
		x = cp_files_get(f, id);
		seen[i] = x->ino;
		assert_true((x->ino & CP_INO_MASK) != 0);
		assert_true(x->ino != 1);
		assert_true(cp_files_by_ino(f, x->ino) == x);
		for (j = 0; j < i; j++)
			assert_true(seen[j] != seen[i]);
	}
	cp_files_free(f);
	/* deterministic: the same order gives the same numbers */
	f = table(order, 64, 127);
	for (i = 0; i < 64; i++) {
		char id[25];

		id_of(i, id);
		assert_true(cp_files_get(f, id)->ino == seen[i]);
	}
	cp_files_free(f);
}

static void test_pages_numbers(void **state)
{
	struct cp_pages *p = cp_pages_new(CP_INO_MASK),
			 *q = cp_pages_new(CP_INO_MASK);
	char files[3][25], id[25], name[64], target[25];
	struct cp_page_link *links;
	uint64_t dir, dir2;
	ssize_t n;
	int i;

	(void)state;
	for (i = 0; i < 3; i++)
		id_of(100 + i, files[i]);
	id_of(7, id);
	assert_int_equal(cp_pages_set(p, id, "Shop", (const char(*)[25])files,
				      3, 1),
			 0);
	/* another index, another order of owners: same numbers */
	assert_int_equal(cp_pages_set(q, "aaaaaaaaaaaaaaaaaaaaaaaa", "x",
				      (const char(*)[25])files, 1, 1),
			 0);
	assert_int_equal(cp_pages_set(q, id, "Shop", (const char(*)[25])files,
				      3, 1),
			 0);
	assert_int_equal(cp_pages_owner(p, 0, id, name, sizeof(name), &dir),
			 0);
	assert_int_equal(cp_pages_owner(q, 1, id, name, sizeof(name), &dir2),
			 0);
	assert_true(dir == dir2);
	assert_string_equal(name, "Shop");
	assert_int_equal(cp_ino_kind(dir), CP_INO_PAGE_DIR);
	n = cp_pages_links(p, dir, &links);
	assert_int_equal(n, 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(cp_ino_kind(links[i].ino), CP_INO_PAGE_LINK);
		assert_int_equal(cp_pages_link_target(p, links[i].ino, target),
				 0);
		assert_string_equal(target, links[i].file_id);
	}
	free(links);
	/* a walk that did not see the owner drops it */
	cp_pages_retain(p, 2);
	assert_int_equal(cp_pages_count(p), 0);
	assert_false(cp_pages_has_dir(p, dir));
	assert_int_equal(cp_pages_links(p, dir, &links), -ENOENT);
	cp_pages_free(p);
	cp_pages_free(q);
}

/* The links of owner @id as (file, number) into @files/@inos; count. */
static ssize_t owner_links(struct cp_pages *p, const char *id,
			   char files[][25], uint64_t *inos)
{
	char oid[25], name[64];
	struct cp_page_link *links;
	uint64_t dir;
	ssize_t n, i;
	size_t k;

	for (k = 0; cp_pages_owner(p, k, oid, name, sizeof(name), &dir) == 0;
	     k++)
		if (strcmp(oid, id) == 0)
			break;
	n = cp_pages_links(p, dir, &links);
	for (i = 0; i < n; i++) {
		memcpy(files[i], links[i].file_id, 25);
		inos[i] = links[i].ino;
	}
	free(links);
	return n;
}

/* A dropped link's number never comes back pointing at another file
 * (the kernel may have kept its target), even when hashes collide. */
static void test_pages_numbers_not_reused(void **state)
{
	/* 3 hash bits: 7 numbers per kind, collisions for sure */
	struct cp_pages *p = cp_pages_new(7);
	char a[25], b[25], fa[2][25], fb[4][25], got[4][25], target[25];
	uint64_t ia[2], ib[4], again[2];
	int i, j;

	(void)state;
	id_of(1, a);
	id_of(2, b);
	for (i = 0; i < 2; i++)
		id_of(200 + i, fa[i]);
	for (i = 0; i < 4; i++)
		id_of(300 + i, fb[i]);
	assert_int_equal(cp_pages_set(p, a, "A", (const char(*)[25])fa, 2, 1),
			 0);
	assert_int_equal(owner_links(p, a, got, ia), 2);
	cp_pages_retain(p, 2); /* A dropped: its two numbers retired */
	assert_int_equal(cp_pages_count(p), 0);
	assert_int_equal(cp_pages_set(p, b, "B", (const char(*)[25])fb, 4, 3),
			 0);
	assert_int_equal(owner_links(p, b, got, ib), 4);
	for (i = 0; i < 4; i++) {
		for (j = 0; j < 2; j++)
			assert_true(ib[i] != ia[j]);
		assert_int_equal(cp_pages_link_target(p, ib[i], target), 0);
		assert_string_equal(target, got[i]);
	}
	/* A's links back: the same numbers as before */
	assert_int_equal(cp_pages_set(p, a, "A", (const char(*)[25])fa, 2, 3),
			 0);
	assert_int_equal(owner_links(p, a, got, again), 2);
	for (i = 0; i < 2; i++)
		assert_true(again[i] == ia[i]);
	cp_pages_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pure),
		cmocka_unit_test(test_order_does_not_matter),
		cmocka_unit_test(test_forced_collisions),
		cmocka_unit_test(test_pages_numbers),
		cmocka_unit_test(test_pages_numbers_not_reused),
	};

	cfg.neg_ttl = 10;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
