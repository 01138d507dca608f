/*
 * test_listing.c - the persisted discovery listing: a round trip keeps
 * every field, with names and URLs holding the characters the format
 * escapes; a file cut anywhere, of another version or of the old JSON
 * format is refused whole before anything is handed over; a damaged
 * line is skipped and counted while the rest is read.
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
#include <unistd.h>

#include "listing.h"

#define NFILES 300

static char dir[64];
static char path[128];

struct got {
	size_t files, pages;
	char names[NFILES][300];
	char urls[NFILES][300];
	int64_t sizes[NFILES];
	int32_t widths[NFILES];
	size_t page_files;
	char page_name[300];
};

static int got_file(void *arg, const struct cp_listing_file *f)
{
	struct got *g = arg;

	if (g->files < NFILES) {
		snprintf(g->names[g->files], 300, "%s", f->name ? f->name : "(null)");
		snprintf(g->urls[g->files], 300, "%s", f->url ? f->url : "(null)");
		g->sizes[g->files] = f->size;
		g->widths[g->files] = f->width;
	}
	g->files++;
	return 0;
}

static int got_page(void *arg, const char *id, const char *name,
		    const char (*files)[CP_ID_BUF], size_t n)
{
	struct got *g = arg;

	(void)id;
	(void)files;
	g->pages++;
	g->page_files += n;
	snprintf(g->page_name, sizeof(g->page_name), "%s", name ? name : "(null)");
	return 0;
}

static void id_of(unsigned i, char out[CP_ID_BUF])
{
	snprintf(out, CP_ID_BUF, "65f1c0de%016x", i);
}

static const char *name_of(unsigned i, char *buf, size_t len)
{
	static const char *odd[] = { "a b", "100%", "-", "x,y", "tab\there",
				     "new\nline", "caf\xc3\xa9", "%2D", " ",
				     "--" };

	if (i % 3 == 0)
		return NULL;
	snprintf(buf, len, "%s #%u", odd[i % 10], i);
	if (i % 10 == 2 && i % 3 == 2)
		snprintf(buf, len, "-");
	return buf;
}

static void write_sample(void)
{
	char ids[NFILES][CP_ID_BUF], name[64], url[128];
	struct cp_listing_writer *w;
	unsigned i;
	int err = 0;

	w = cp_listing_begin(dir, path, 1700000000, &err);
	assert_non_null(w);
	for (i = 0; i < NFILES; i++) {
		struct cp_listing_file f;

		id_of(i, ids[i]);
		snprintf(url, sizeof(url), "https://img.example/%u/a%%20b.jpg", i);
		f.id = ids[i];
		f.size = i % 4 == 0 ? -1 : (int64_t)i * 1000;
		f.width = i % 5 == 0 ? -1 : (int32_t)i;
		f.height = -1;
		f.url = i % 2 ? url : NULL;
		f.name = name_of(i, name, sizeof(name));
		assert_int_equal(cp_listing_file(w, &f), 0);
	}
	assert_int_equal(cp_listing_page(w, ids[0], "Summer sale, 50% off",
					 (const char(*)[CP_ID_BUF])ids, NFILES),
			 0);
	assert_int_equal(cp_listing_end(w, 1), 0);
}

static void test_round_trip(void **state)
{
	const struct cp_listing_sink sink = { NULL, got_file, got_page };
	struct cp_listing_sink s = sink;
	struct got *g = calloc(1, sizeof(*g));
	char name[64];
	unsigned bad = 1, i;
	size_t files = 0;
	double at = 0;

	(void)state;
	write_sample();
	s.arg = g;
	assert_int_equal(cp_listing_read(path, &s, &at, &files, &bad), 1);
	assert_int_equal(bad, 0);
	assert_int_equal(files, NFILES);
	assert_true(at == 1700000000);
	assert_int_equal(g->files, NFILES);
	assert_int_equal(g->pages, 1);
	assert_int_equal(g->page_files, NFILES);
	assert_string_equal(g->page_name, "Summer sale, 50% off");
	for (i = 0; i < NFILES; i++) {
		const char *n = name_of(i, name, sizeof(name));

		assert_string_equal(g->names[i], n ? n : "(null)");
		assert_int_equal(g->sizes[i], i % 4 == 0 ? -1 : (int64_t)i * 1000);
		assert_int_equal(g->widths[i], i % 5 == 0 ? -1 : (int32_t)i);
		if (i % 2) {
			char url[128];

			snprintf(url, sizeof(url),
				 "https://img.example/%u/a%%20b.jpg", i);
			assert_string_equal(g->urls[i], url);
		} else {
			assert_string_equal(g->urls[i], "(null)");
		}
	}
	free(g);
}

static char *slurp(size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	rewind(f);
	buf = malloc(*len + 1);
	assert_int_equal(fread(buf, 1, *len, f), *len);
	fclose(f);
	return buf;
}

static void put_file(const char *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	fclose(f);
}

static void test_cut_anywhere_is_refused_whole(void **state)
{
	struct got *g = calloc(1, sizeof(*g));
	const struct cp_listing_sink s = { g, got_file, got_page };
	size_t len, cut, files;
	unsigned bad;
	double at;
	char *good;

	(void)state;
	write_sample();
	good = slurp(&len);
	for (cut = 0; cut < len; cut += cut < 200 || len - cut < 200 ? 1 : 97) {
		put_file(good, cut);
		assert_int_equal(cp_listing_read(path, &s, &at, &files, &bad),
				 -EINVAL);
		assert_int_equal(g->files + g->pages, 0);
	}
	put_file(good, len);
	assert_int_equal(cp_listing_read(path, &s, &at, &files, &bad), 1);
	free(good);
	free(g);
}

static void test_other_formats_refused(void **state)
{
	struct got *g = calloc(1, sizeof(*g));
	const struct cp_listing_sink s = { g, got_file, got_page };
	static const char *const bad_files[] = {
		"{\"version\":1,\"complete_at\":1,\"files\":[],\"pages\":[]}\nend 0 0\n",
		"cpfs-listing 1 1700000000\nend 0 0\n",
		"cpfs-listing 2 soon\nend 0 0\n",
		"cpfs-listing 2 1700000000\nend 0 0",
		"",
	};
	size_t i, files;
	unsigned bad;
	double at;

	(void)state;
	for (i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
		put_file(bad_files[i], strlen(bad_files[i]));
		assert_int_equal(cp_listing_read(path, &s, &at, &files, &bad),
				 -EINVAL);
	}
	assert_int_equal(g->files + g->pages, 0);
	unlink(path);
	assert_int_equal(cp_listing_read(path, &s, &at, &files, &bad), 0);
	free(g);
}

static void test_damaged_lines_skipped(void **state)
{
	struct got *g = calloc(1, sizeof(*g));
	const struct cp_listing_sink s = { g, got_file, got_page };
	const char *text =
		"cpfs-listing 2 1700000000\n"
		"f 65f1c0de0000000000000001 10 -1 -1 - one\n"
		"f 65f1c0de0000000000000002 ten -1 -1 - two\n"       /* size */
		"f 65f1c0de000000000000000 10 -1 -1 - short-id\n"    /* id */
		"f 65f1c0de0000000000000004 10 -1 -1 ftp://x/y four\n" /* url */
		"f 65f1c0de0000000000000005 10 -1 -1 - fi%2\n"       /* escape */
		"f 65f1c0de0000000000000006 10 -1 -1 - a%00b\n"      /* NUL */
		"f 65f1c0de0000000000000007 10 -1 -1 - seven extra\n"
		"q what\n"
		"p 65f1c0de00000000000000aa Page 65f1c0de0000000000000001,zz\n"
		"p 65f1c0de00000000000000ab Page2 65f1c0de0000000000000001\n"
		"f 65f1c0de0000000000000009 2000000000000000 -1 -1 - big\n"
		"end 10 2\n";
	size_t files;
	unsigned bad;
	double at;

	(void)state;
	put_file(text, strlen(text));
	assert_int_equal(cp_listing_read(path, &s, &at, &files, &bad), 1);
	assert_int_equal(g->files, 1);
	assert_string_equal(g->names[0], "one");
	assert_int_equal(g->pages, 1);
	assert_string_equal(g->page_name, "Page2");
	/* 8 bad records + a count that does not match the trailer */
	assert_int_equal(bad, 10);
	free(g);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_listing.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/discovery-1", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) < 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_cut_anywhere_is_refused_whole),
		cmocka_unit_test(test_other_formats_refused),
		cmocka_unit_test(test_damaged_lines_skipped),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
